"""The tables of a limbwatch store file. Samples and records share one SQLite file (one file to
back up) but are used through separate interfaces; with InfluxDB for samples the same file holds
the records and its chunk tables stay empty."""

from __future__ import annotations

SCHEMA_VERSION = 6  # 1: samples, reports by night start and events (before records existed);
# 2: records without night events, tokens, shares, journal and live status; 3: tokens without
# the gateway role (upgraded in place by UPGRADES[3]); 4: live status without its index by
# serial (UPGRADES[4]); 5: nor by time (UPGRADES[5])
APPLICATION_ID = int.from_bytes(b"LWst", "big")  # PRAGMA application_id of a limbwatch store
WHAT = "limbwatch store"

# A gateway token's subjects are its shares (those it may write samples and records for).
_TOKENS = """CREATE TABLE tokens (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('caregiver', 'clinician', 'admin', 'gateway')),
        subject_id TEXT REFERENCES subjects (id),
        digest TEXT NOT NULL UNIQUE,
        created REAL NOT NULL,
        revoked REAL
    )"""

# Each sensor's newest snapshot in one seek (the index holds the rowid, `id`, after the serial).
_STATUS_BY_SERIAL = "CREATE INDEX sensor_status_by_serial ON sensor_status (serial)"
# A stream's opening snapshots (the last minutes) and the pruning of old ones, without a scan.
_STATUS_BY_TIME = "CREATE INDEX sensor_status_by_time ON sensor_status (time)"

SAMPLE_TABLES = (
    """CREATE TABLE chunks (
        device TEXT NOT NULL,
        session INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        subject TEXT NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('left', 'right')),
        t0 REAL NOT NULL,
        dt REAL NOT NULL,
        n INTEGER NOT NULL,
        counts_per_g INTEGER NOT NULL,
        ticks INTEGER,  -- device ticks (unwrapped) at the first sample: re-stamped by the model
        rate_hz INTEGER,  -- the sensor's nominal rate
        counts BLOB NOT NULL,
        crc INTEGER NOT NULL,  -- CRC-32 of the row's other fields (sqlite.row_crc)
        PRIMARY KEY (device, session, seq)
    ) WITHOUT ROWID""",
    "CREATE INDEX chunks_by_leg_time ON chunks (subject, side, t0)",
    # A chunk that arrived under a (device, session, seq) already stored with other contents (a
    # sensor restarted with its seqs reused): kept here, apart, once per distinct content.
    """CREATE TABLE chunk_conflicts (
        device TEXT NOT NULL,
        session INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        subject TEXT NOT NULL,
        side TEXT NOT NULL,
        t0 REAL NOT NULL,
        dt REAL NOT NULL,
        n INTEGER NOT NULL,
        counts_per_g INTEGER NOT NULL,
        ticks INTEGER,
        rate_hz INTEGER,
        counts BLOB NOT NULL,
        crc INTEGER NOT NULL,
        received REAL NOT NULL,  -- Unix s (store clock)
        PRIMARY KEY (device, session, seq, crc)
    ) WITHOUT ROWID""",
    # The newest clock model of each sensor session (limbwatch.clockmodel, JSON): reads map the
    # chunks' ticks to UTC with it.
    """CREATE TABLE clock_models (
        device TEXT NOT NULL,
        session INTEGER NOT NULL,
        model TEXT NOT NULL,
        updated REAL NOT NULL,  -- Unix s (store clock)
        PRIMARY KEY (device, session)
    ) WITHOUT ROWID""",
    # The longest chunk of each leg (n * dt, s): a read of [start, end) then seeks the index at
    # t0 >= start - max_span instead of scanning the leg's earlier nights.
    """CREATE TABLE leg_spans (
        subject TEXT NOT NULL,
        side TEXT NOT NULL,
        max_span REAL NOT NULL,
        PRIMARY KEY (subject, side)
    ) WITHOUT ROWID""",
)

RECORD_TABLES = (
    """CREATE TABLE subjects (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        birth_date TEXT,
        time_zone TEXT NOT NULL
    )""",
    """CREATE TABLE sensors (
        serial TEXT PRIMARY KEY,
        subject_id TEXT NOT NULL REFERENCES subjects (id),
        side TEXT NOT NULL CHECK (side IN ('left', 'right'))
    )""",
    """CREATE TABLE nights (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        subject_id TEXT NOT NULL REFERENCES subjects (id),
        date TEXT NOT NULL,
        start REAL NOT NULL,
        end REAL NOT NULL,
        status TEXT NOT NULL,
        chunks INTEGER NOT NULL,
        data_changed REAL NOT NULL,
        ended INTEGER NOT NULL DEFAULT 0,
        reanalyse INTEGER NOT NULL DEFAULT 0,
        warnings TEXT NOT NULL DEFAULT '[]',
        failure TEXT,
        UNIQUE (subject_id, date)
    )""",
    """CREATE TABLE reports (
        night_id INTEGER PRIMARY KEY REFERENCES nights (id),
        algorithm_version TEXT NOT NULL,
        report TEXT NOT NULL,
        figures TEXT NOT NULL,
        flags TEXT NOT NULL,
        created REAL NOT NULL
    )""",
    """CREATE TABLE device_events (
        id INTEGER PRIMARY KEY,
        subject TEXT NOT NULL,
        side TEXT CHECK (side IN ('left', 'right')),
        time REAL NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    )""",
    "CREATE INDEX device_events_by_subject_time ON device_events (subject, time)",
    """CREATE TABLE night_events (
        id INTEGER PRIMARY KEY,
        night_id INTEGER NOT NULL REFERENCES nights (id),
        kind TEXT NOT NULL,
        start REAL NOT NULL,
        end REAL NOT NULL,
        side TEXT CHECK (side IN ('left', 'right', 'bilateral')),
        detail TEXT NOT NULL
    )""",
    "CREATE INDEX night_events_by_night ON night_events (night_id, start)",
    _TOKENS,
    """CREATE TABLE shares (
        subject_id TEXT NOT NULL REFERENCES subjects (id),
        token_name TEXT NOT NULL REFERENCES tokens (name),
        PRIMARY KEY (subject_id, token_name)
    ) WITHOUT ROWID""",
    """CREATE TABLE journal (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        subject_id TEXT NOT NULL REFERENCES subjects (id),
        time REAL NOT NULL,
        kind TEXT NOT NULL,
        text TEXT NOT NULL
    )""",
    "CREATE INDEX journal_by_subject_time ON journal (subject_id, time)",
    """CREATE TABLE sensor_status (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        serial TEXT NOT NULL,
        subject_id TEXT NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('left', 'right')),
        time REAL NOT NULL,
        connected INTEGER NOT NULL,
        battery_pct REAL,
        last_packet REAL,
        on_ankle INTEGER,
        last_movement REAL
    )""",
    _STATUS_BY_SERIAL,
    _STATUS_BY_TIME,
)

TABLES = SAMPLE_TABLES + RECORD_TABLES

# Upgrade steps: UPGRADES[v] takes a file of schema v to v + 1 (in one transaction).
UPGRADES: dict[int, tuple[str, ...]] = {
    # the role's CHECK widened: a new table (renaming the old one would move the shares'
    # reference to it), the rows copied, the old one dropped
    3: (_TOKENS.replace("CREATE TABLE tokens", "CREATE TABLE tokens_v4", 1),
        "INSERT INTO tokens_v4 SELECT * FROM tokens",
        "DROP TABLE tokens",
        "ALTER TABLE tokens_v4 RENAME TO tokens"),
    4: (_STATUS_BY_SERIAL,),
    5: (_STATUS_BY_TIME,),
}
