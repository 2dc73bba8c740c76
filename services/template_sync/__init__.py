"""template-sync: pulls approved templates from Meta into the store."""
