"""The health score of a number, as `GET /instance/{name}/health` answers it."""

from pydantic import BaseModel, Field


class HealthPart(BaseModel):
    rate: float = Field(description="Replies per send; failures per attempt; else per send")
    points: float = Field(description="What this part gives the score now")
    max: int = Field(description="The most this part gives")


class HealthParts(BaseModel):
    replies: HealthPart
    failures: HealthPart
    blocks: HealthPart
    reports: HealthPart


class InstanceHealth(BaseModel):
    instanceName: str
    days: int = Field(description="How many days back the counts go, today included")
    sent: int
    replies: int = Field(description="Contacts who wrote within 24 h of a message to them")
    failures: int = Field(description="Sends that failed")
    blocks: int = Field(description="Messages the provider took, then reported undeliverable")
    reports: int = Field(description="Times the provider flagged the number (a pause signal)")
    score: int = Field(ge=0, le=100, description="The sum of the parts' points")
    parts: HealthParts
