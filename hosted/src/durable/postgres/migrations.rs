//! The schema, as embedded, versioned migrations: each runs once, in order, in one transaction
//! with the version it brings.

/// The migrations, the `n`-th bringing the schema to version `n + 1`. `{schema}` stands for the
/// quoted schema name. Never edit a published one: add the next.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: jobs, the maintenance lease, the once-per-cluster ticks.
    r"
    CREATE TABLE {schema}.jobs (
        id bigserial PRIMARY KEY,
        queue text NOT NULL,
        payload jsonb NOT NULL,
        state text NOT NULL DEFAULT 'available'
            CHECK (state IN ('available', 'running', 'completed', 'dead')),
        attempt integer NOT NULL DEFAULT 0,
        max_attempts integer NOT NULL CHECK (max_attempts >= 1),
        claim bigint NOT NULL DEFAULT 0,
        run_at timestamptz NOT NULL DEFAULT now(),
        lease_owner text,
        lease_expires_at timestamptz,
        last_error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz
    );
    CREATE INDEX jobs_ready ON {schema}.jobs (queue, run_at, id) WHERE state = 'available';
    CREATE INDEX jobs_leased ON {schema}.jobs (lease_expires_at) WHERE state = 'running';
    CREATE INDEX jobs_finished ON {schema}.jobs (finished_at) WHERE state = 'completed';
    CREATE INDEX jobs_dead ON {schema}.jobs (queue, finished_at) WHERE state = 'dead';
    CREATE TABLE {schema}.leaders (
        name text PRIMARY KEY,
        holder text NOT NULL,
        term bigint NOT NULL,
        expires_at timestamptz NOT NULL
    );
    CREATE TABLE {schema}.ticks (
        schedule text NOT NULL,
        due_us bigint NOT NULL,
        run_by text NOT NULL,
        run_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (schedule, due_us)
    );
    ",
    // 2: where each job was sent from (the sender's run and trace context), for its run's span.
    r"
    ALTER TABLE {schema}.jobs ADD COLUMN origin text;
    ",
];

/// The version this build brings a schema to.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "a handful of migrations"
)]
pub(super) const LATEST: i32 = MIGRATIONS.len() as i32;
