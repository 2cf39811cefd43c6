-- The Optimizer's tables. They share the mesh's database with the other servers', so every name
-- starts with `optimizer_` and migrations are recorded in optimizer_schema_migrations.

CREATE TABLE optimizer_agents (
    agent_id            uuid        PRIMARY KEY,
    organization_id     text        NOT NULL CHECK (organization_id <> ''),
    display_name        text        NOT NULL,
    simbench_code       text        NOT NULL DEFAULT '',
    grid_dataset_id     text        NOT NULL DEFAULT '',
    profiles_dataset_id text        NOT NULL DEFAULT '',
    algorithm           text        NOT NULL,
    hyperparameters     jsonb       NOT NULL DEFAULT '{}',
    total_timesteps     bigint      NOT NULL CHECK (total_timesteps > 0),
    seed                bigint      NOT NULL,
    train_first         integer     NOT NULL,
    train_last          integer     NOT NULL,
    eval_first          integer     NOT NULL,
    eval_last           integer     NOT NULL,
    shiftable_loads     integer     NOT NULL,
    actions_per_day     integer     NOT NULL,
    reward              text        NOT NULL,
    time_limit_seconds  bigint      NOT NULL CHECK (time_limit_seconds > 0),
    memory_limit_bytes  bigint      NOT NULL CHECK (memory_limit_bytes > 0),
    state               text        NOT NULL CHECK (state IN ('QUEUED', 'TRAINING', 'EVALUATING', 'STORING',
                                                              'SUCCEEDED', 'FAILED', 'CANCELLED')),
    failure_reason      text        NOT NULL DEFAULT '',
    timesteps_done      bigint      NOT NULL DEFAULT 0,
    episodes_done       bigint      NOT NULL DEFAULT 0,
    last_episode_return double precision NOT NULL DEFAULT 0,
    evaluation          jsonb       NOT NULL DEFAULT '{}',
    model_id            text        NOT NULL DEFAULT '',
    grid_sha256         text        NOT NULL DEFAULT '',
    profiles_sha256     text        NOT NULL DEFAULT '',
    create_time         timestamptz NOT NULL,
    start_time          timestamptz,
    end_time            timestamptz
);

CREATE INDEX optimizer_agents_org_create_time_idx ON optimizer_agents (organization_id, create_time DESC, agent_id DESC);
CREATE INDEX optimizer_agents_create_time_idx ON optimizer_agents (create_time DESC, agent_id DESC);
CREATE INDEX optimizer_agents_live_idx ON optimizer_agents (create_time)
    WHERE state IN ('QUEUED', 'TRAINING', 'EVALUATING', 'STORING');

-- One row per finished training episode (the learning curve a watch replays).
CREATE TABLE optimizer_agent_episodes (
    agent_id       uuid             NOT NULL REFERENCES optimizer_agents (agent_id) ON DELETE CASCADE,
    episode        bigint           NOT NULL CHECK (episode > 0),
    timesteps      bigint           NOT NULL,
    episode_return double precision NOT NULL,
    scr            double precision NOT NULL,
    ssr            double precision NOT NULL,
    violations     bigint           NOT NULL,
    PRIMARY KEY (agent_id, episode)
);
