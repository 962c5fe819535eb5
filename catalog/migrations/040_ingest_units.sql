-- Incremental ingest (orchestration): what each ingest unit (an adapter's file or folder) last loaded, keyed by
-- a content fingerprint. A unit whose fingerprint is unchanged is not read again; its sources stay as loaded.
-- fingerprint = sha256 over (reader code version, adapter, the unit's content hash, the hash of the files beside
-- it that adapters may read: gold answers, summaries); sha256 = the unit's own content hash (as sources.sha256).

CREATE TABLE ingest_units (
    unit_key     VARCHAR PRIMARY KEY,   -- "<adapter>:<source name>/<path in source>"
    target       VARCHAR NOT NULL,      -- the path or manifest name it was found under
    path         VARCHAR NOT NULL,
    adapter      VARCHAR NOT NULL,
    sha256       VARCHAR NOT NULL,
    fingerprint  VARCHAR NOT NULL,
    source_ids   VARCHAR[] NOT NULL,    -- the sources (catalog rows) this unit produced
    run_id       VARCHAR,
    loaded_at    TIMESTAMP NOT NULL
);
