import { dataFeature } from '../data/data.feature';
import type { ModelHandle } from '../data/define-model';
import { commentModel } from './comment.model';
import { postModel } from './post.model';
import { profileModel } from './profile.model';

/**
 * The app's models: one file each in this folder, listed here (explicitly, so tests and the
 * compiled server load the same set). Each gets a GraphQL CRUD API with its policy; see README
 * "Add a model in three steps".
 */
export const MODELS: readonly ModelHandle[] = [profileModel, postModel, commentModel];

/** The app's models as a generated data API. Built once: type-graphql's metadata is global. */
export const modelsFeature = dataFeature(MODELS);
