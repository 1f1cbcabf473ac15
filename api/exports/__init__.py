"""The specialist's exports: pure functions from a night in memory to file contents.

`edf` (EDF+ and its Luna `.annot` sidecar), `tables` (events and epochs CSV), `printable` (PDF
report) and `omh` (Open mHealth sleep episode). Nothing here knows HTTP or the stores; the routes
read the night, its samples and notes, and hand them in.
"""
