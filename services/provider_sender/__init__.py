"""provider-sender: every call to a WhatsApp provider, and provider callbacks made into events."""
