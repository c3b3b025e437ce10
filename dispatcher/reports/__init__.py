"""What a campaign looks like afterwards, for people and for scripts.

`recipients` (one row per recipient, CSV or Excel, safe for spreadsheets), `xlsx` (the Excel workbook:
Summary, then Recipients), `summary` (one row per campaign, the same numbers as `status`), `chart`,
`chart_operators` and `chart_text` (delivery over time and outcomes by operator, Persian shaped),
`outcomes` and `provider_codes` (states and provider codes in words), `featurematrix` (the provider
feature table of docs/providers.md). Reports read the store through `campaigns.store` and never write.
"""
