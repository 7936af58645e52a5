"""Identity and access: principals, permissions, tokens, API keys, rate limits. No HTTP here."""
