"""The generations ledger: one row per request, what it was billed, written off the request path.

`recorder` turns what happened to a request into its row, `billing` prices its usage,
`attribution` trims the caller's self-description, `periods` tells spend-limit windows,
and `writer` inserts rows in batches.
"""
