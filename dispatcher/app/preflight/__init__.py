"""The preflight: everything `send` must know before it stores a campaign, and the test send.

`gather` reads what lies outside the file (the provider's credentials and balance, the prices, the
store's unfinished campaigns and recent sends) and makes the one pass over the file; `usecase` is what
front ends call: `preflight(settings, prepared)` (the checks, the summary, the spool that `create`
stores from) and `test_send` of the previews.
"""
