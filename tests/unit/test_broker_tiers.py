from lanegate.broker import backoff_for, retry_queue_for


def test_retry_waits_in_the_shortest_tier_at_least_as_long_as_asked() -> None:
    assert ("q.delay.1s", 1) == retry_queue_for("q", 0.2)
    assert ("q.delay.5s", 5) == retry_queue_for("q", 5)
    assert ("q.delay.30s", 30) == retry_queue_for("q", 6)
    assert ("q.delay.300s", 300) == retry_queue_for("q", 86400)


def test_backoff_grows_with_attempts_and_is_capped() -> None:
    assert [1.0, 5.0, 30.0, 300.0, 300.0] == [backoff_for(n) for n in range(1, 6)]
