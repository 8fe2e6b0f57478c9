// Recipes: a whole fine-tuning run described as data (the object a recipe
// file holds), validated, and turned into data, model, optimizer, schedule and
// loss. The fine-tuning steps themselves live in finetune/.
import { finetune } from '../finetune/index.js';
import { LRScheduler, scheduleFactor } from '../optim/lr-scheduler.js';
import { parseRecipe, RecipeSchema, DataSchema } from './schema.js';

export { parseRecipe, RecipeSchema, RecipeError, DataSchema } from './schema.js';
export type { Recipe, DataSpec, RecipeIssue } from './schema.js';

export const recipes = {
  parseRecipe, RecipeSchema, DataSchema,
  // Before 0.2 the fine-tuning steps lived here; they are finetune.* now.
  // These aliases keep old scripts working (README, changelog).
  ...finetune,
  LRScheduler, scheduleFactor,
} as const;
