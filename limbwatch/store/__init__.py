"""Stores by what they hold: samples (`samples`: SQLite now, InfluxDB later) and records
(`records`: subjects, nights, reports, events, tokens; SQLite in every deployment). `open` turns
a store URL into both."""
