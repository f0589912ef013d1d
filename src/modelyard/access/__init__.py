"""Who is calling: the caller a request acts for, and the authenticator that finds it."""
