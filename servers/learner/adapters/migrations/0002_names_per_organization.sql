-- Learner names are unique within an organization, not across the mesh (issue 9): a name
-- another organization uses must not be refused, which would tell a stranger that it exists.
-- The Open Inference Protocol resolves a model name within the caller's organization.

ALTER TABLE learner_learners DROP CONSTRAINT learner_learners_display_name_key;
ALTER TABLE learner_learners ADD CONSTRAINT learner_learners_org_display_name_key
    UNIQUE (organization_id, display_name);
