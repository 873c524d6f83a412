-- MeshView's database schema at head (23dad03d2e42), declared once so that
-- `ralembic check` (and `ralembic revision --autogenerate`) can compare a database with it:
-- alembic.ini points `ralembic.target_sql` here.  Edit this file together with a new
-- revision; tests/meshview_schema.rs fails when the two disagree.
--
-- Written from an empty database upgraded to head, tidied by hand.  Only what autogenerate
-- compares matters (tables, columns, types, nullability, indexes, unique constraints,
-- foreign keys); the server defaults are kept for readers.

CREATE TABLE example (
    id          INTEGER      NOT NULL,
    name        VARCHAR(100) NOT NULL,
    description TEXT,
    value       FLOAT,
    is_active   BOOLEAN      NOT NULL DEFAULT '1',
    created_at  DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  DATETIME,
    PRIMARY KEY (id)
);
CREATE INDEX idx_example_name ON example (name);

CREATE TABLE node (
    id              VARCHAR NOT NULL,
    node_id         BIGINT,
    long_name       VARCHAR,
    short_name      VARCHAR,
    hw_model        VARCHAR,
    firmware        VARCHAR,
    role            VARCHAR,
    last_lat        BIGINT,
    last_long       BIGINT,
    channel         VARCHAR,
    first_seen_us   BIGINT,
    last_seen_us    BIGINT,
    is_mqtt_gateway BOOLEAN,
    PRIMARY KEY (id),
    UNIQUE (node_id)
);
CREATE INDEX idx_node_node_id ON node (node_id);
CREATE INDEX idx_node_first_seen_us ON node (first_seen_us);
CREATE INDEX idx_node_last_seen_us ON node (last_seen_us);

CREATE TABLE node_public_key (
    id            INTEGER NOT NULL,
    node_id       BIGINT  NOT NULL,
    public_key    VARCHAR NOT NULL,
    first_seen_us BIGINT,
    last_seen_us  BIGINT,
    PRIMARY KEY (id)
);
CREATE INDEX idx_node_public_key_node_id ON node_public_key (node_id);
CREATE INDEX idx_node_public_key_public_key ON node_public_key (public_key);

CREATE TABLE packet (
    id             BIGINT NOT NULL,
    portnum        INTEGER,
    from_node_id   BIGINT,
    to_node_id     BIGINT,
    payload        BLOB,
    import_time_us BIGINT,
    channel        VARCHAR,
    PRIMARY KEY (id)
);
CREATE INDEX idx_packet_from_node_id ON packet (from_node_id);
CREATE INDEX idx_packet_to_node_id ON packet (to_node_id);
CREATE INDEX idx_packet_import_time_us ON packet (import_time_us);
CREATE INDEX idx_packet_from_node_time_us ON packet (from_node_id, import_time_us);

CREATE TABLE packet_seen (
    packet_id      BIGINT  NOT NULL,
    node_id        BIGINT  NOT NULL,
    rx_time        BIGINT  NOT NULL,
    hop_limit      INTEGER,
    hop_start      INTEGER,
    channel        VARCHAR,
    rx_snr         FLOAT,
    rx_rssi        INTEGER,
    topic          VARCHAR,
    import_time_us BIGINT,
    PRIMARY KEY (packet_id, node_id, rx_time),
    FOREIGN KEY (packet_id) REFERENCES packet (id)
);
CREATE INDEX idx_packet_seen_packet_id ON packet_seen (packet_id);
CREATE INDEX idx_packet_seen_node_id ON packet_seen (node_id);
CREATE INDEX idx_packet_seen_import_time_us ON packet_seen (import_time_us);

CREATE TABLE traceroute (
    id              INTEGER NOT NULL,
    packet_id       BIGINT,
    gateway_node_id BIGINT,
    done            BOOLEAN,
    route           BLOB,
    import_time_us  BIGINT,
    route_return    BLOB,
    PRIMARY KEY (id),
    FOREIGN KEY (packet_id) REFERENCES packet (id)
);
CREATE INDEX idx_traceroute_import_time_us ON traceroute (import_time_us);
