import type { Config } from '../config';
import { dataFeatures } from '../data/data.feature';
import type { ModelHandle } from '../data/define-model';
import type { Feature } from '../feature';
import { commentModel } from './comment.model';
import { MODELS_SETTINGS } from './models.settings';
import { postModel } from './post.model';
import { profileModel } from './profile.model';

/**
 * The app's models: one file each in this folder, listed here (explicitly, so tests and the
 * compiled server load the same set). Each gets a GraphQL CRUD API with its policy; see README
 * "Add a model in three steps".
 */
export const MODELS: readonly ModelHandle[] = [profileModel, postModel, commentModel];

/**
 * The sample models among them: served only with BASTION_SAMPLE_MODELS (on in development and
 * tests, off in production), since a production API should offer nothing nobody asked for.
 */
export const SAMPLE_MODELS: readonly ModelHandle[] = [profileModel, postModel, commentModel];

// Generated once for both variants: type-graphql's metadata is global.
const serving = dataFeatures(MODELS);
const withSettings = (feature: Feature): Feature => ({ ...feature, settings: MODELS_SETTINGS });

/** Every model, the samples included: the development configuration, which schema/schema.graphql shows. */
export const modelsFeature = withSettings(serving(MODELS));

/** The app's own models alone: what a server with BASTION_SAMPLE_MODELS off serves. */
const withoutSamples = withSettings(serving(MODELS.filter((model) => !SAMPLE_MODELS.includes(model))));

/** The models feature a process with this configuration runs. */
export function modelsFeatureFor(config: Pick<Config, 'sampleModels'>): Feature {
  return config.sampleModels ? modelsFeature : withoutSamples;
}
