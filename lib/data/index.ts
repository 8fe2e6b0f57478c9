// The `data` namespace: datasets, splits, transforms and loaders.
import { readIdx, fashionMnist, FASHION_MNIST_CLASSES } from './idx.js';
import { TensorLoader, permutation } from './tensor-loader.js';
import { split, kFold, classCounts } from './split.js';
import { readCsvDataset, readJsonlDataset, readConll, parseCsv } from './text.js';
import { imageFolder, loadImage, IMAGENET_MEAN, IMAGENET_STD } from './images.js';
import { DataLoader, ImageDataset } from './data-loader.js';
import { WordNet, synonymReplacement, randomDeletion, randomSwap } from './augment-text.js';
import { rng } from './tensor-loader.js';
import { getEntities, convertTags, validateTags, entitiesToTags, TAG_SCHEMES } from './tag-schemes.js';
import { WordPieceTokenizer } from './tokenizer.js';
import { ByteLevelBPETokenizer } from './tokenizer-bpe.js';
import { loadTokenizer } from './load-tokenizer.js';
import * as debian from './debian.js';
import { detection } from './detection/index.js';
import * as licenceClauses from './licence-clauses.js';
import { maskTokens, MaskedLMCollator, KeyedRandom, specialTokenIds } from './mlm-collator.js';
import { trainWordPiece, WordPieceVocabulary } from './wordpiece-trainer.js';
import {
  splitWords,
  spansToTags,
  tagsToSpans,
  readConllTags,
  readJsonlSpans,
  encodeWords,
  mergeWindowPredictions,
  batchWindows,
  packFirstPieces,
} from './token-classification.js';

export type { ImageSample, ImageFolder, Transform } from './images.js';
export type { TextDataset, TextDatasetOptions } from './text.js';
export type { Dataset, Item, DataLoaderOptions } from './data-loader.js';
export type { Batch } from './tensor-loader.js';
export type { TagScheme, Entity, EntityOptions } from './tag-schemes.js';
export type { Encoding, EncodeOptions } from './tokenizer.js';
export type {
  DescriptionCorpus,
  DescriptionDocument,
  DescriptionOptions,
  LicenceParagraph,
  LicenceSplit,
  LicenceSplitOptions,
  LabelledParagraph,
  LicenceCorpus,
  LicenceCorpusOptions,
  CorpusDocument,
} from './debian.js';
export type { ClauseSpan, ClauseDocument, ClauseDataset, ClauseManifestEntry, ClauseSplit, ClauseSplitOptions, ClauseType } from './licence-clauses.js';
export type { MaskTokensOptions, MaskedBatch, MaskedLMCollatorOptions } from './mlm-collator.js';
export type { TrainWordPieceOptions, WordPieceTrainingStats } from './wordpiece-trainer.js';
export type {
  Span,
  Offsets,
  TaggedDocument,
  TaggedCorpus,
  ReadConllTagsOptions,
  ReadJsonlSpansOptions,
  WordTokenizer,
  EncodeWordsOptions,
  WordWindow,
} from './token-classification.js';
export type { WordsTokenization, WordsEncoding } from './tokenizer.js';
export type * from './detection/index.js';

export const data = {
  readIdx,
  fashionMnist,
  FASHION_MNIST_CLASSES,
  TensorLoader,
  permutation,
  split,
  kFold,
  classCounts,
  readCsvDataset,
  readJsonlDataset,
  readConll,
  parseCsv,
  imageFolder,
  loadImage,
  IMAGENET_MEAN,
  IMAGENET_STD,
  DataLoader,
  ImageDataset,
  WordNet,
  synonymReplacement,
  randomDeletion,
  randomSwap,
  rng,
  getEntities,
  convertTags,
  validateTags,
  entitiesToTags,
  TAG_SCHEMES,
  WordPieceTokenizer,
  ByteLevelBPETokenizer,
  loadTokenizer,
  maskTokens,
  MaskedLMCollator,
  KeyedRandom,
  specialTokenIds,
  trainWordPiece,
  WordPieceVocabulary,
  debian,
  licenceClauses,
  splitWords,
  spansToTags,
  tagsToSpans,
  readConllTags,
  readJsonlSpans,
  encodeWords,
  mergeWindowPredictions,
  batchWindows,
  packFirstPieces,
  detection,
} as const;
