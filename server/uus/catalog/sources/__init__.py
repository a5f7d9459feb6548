"""One module per upstream feed: pure functions that fetch, verify and parse; no Django here."""
