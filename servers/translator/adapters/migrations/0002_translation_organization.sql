-- A translation belongs to its source model's owner organization (docs/security.md). Whoever may
-- read the model (its owner, an organization it is shared with, anyone when it is public) may get
-- and download the translation; that is asked of the Registry at each call, never stored here.
-- This column serves ListTranslations without a model_id: the caller's own translations.
-- Translations stored before this migration get '' and are listed by model_id only.

ALTER TABLE translator_translations ADD COLUMN organization_id text NOT NULL DEFAULT '';

CREATE INDEX translator_translations_org_idx
    ON translator_translations (organization_id, create_time DESC, translation_id DESC);
CREATE INDEX translator_translations_org_model_idx
    ON translator_translations (organization_id, model_id, create_time DESC, translation_id DESC);
