-- Learning is a write too (issue 16). What a Learn stream acknowledged after a learner's last
-- saved version is journaled here before it is learned and acknowledged, and replayed on top of
-- that version when the Learner restarts. A save compacts the journal in the same transaction
-- that records the version: the messages it covers are deleted and the training pairs still
-- waiting for a micro-batch are kept as one 'pending' row at the save's position (journal_seq).

ALTER TABLE learner_learners ADD COLUMN journal_seq bigint NOT NULL DEFAULT 0 CHECK (journal_seq >= 0);

CREATE TABLE learner_learn_journal (
    learner_id  uuid     NOT NULL REFERENCES learner_learners (learner_id) ON DELETE CASCADE,
    seq         bigint   NOT NULL CHECK (seq >= 0),
    kind        text     NOT NULL CHECK (kind IN ('observations', 'pending')),
    flush       boolean  NOT NULL DEFAULT false,
    payload     bytea    NOT NULL,
    PRIMARY KEY (learner_id, seq)
);
