// The `data` namespace: datasets, splits, transforms and loaders.
import { readIdx, fashionMnist, FASHION_MNIST_CLASSES } from './idx.js';
import { TensorLoader, permutation } from './loader.js';
import { split, kFold, classCounts } from './split.js';
import { readCsvDataset, readJsonlDataset, readConll, parseCsv } from './text.js';
import { imageFolder, loadImage, IMAGENET_MEAN, IMAGENET_STD } from './images.js';
import { DataLoader, ImageDataset } from './dataloader.js';
import { WordNet, synonymReplacement, randomDeletion, randomSwap } from './augment-text.js';
import { rng } from './loader.js';
import { WordPieceTokenizer } from './tokenizer.js';
import { ByteLevelBPETokenizer } from './tokenizer-bpe.js';

export type { ImageSample, ImageFolder, Transform } from './images.js';
export type { TextDataset, TextDatasetOptions } from './text.js';
export type { Dataset, Item, DataLoaderOptions } from './dataloader.js';
export type { Batch } from './loader.js';
export type { Encoding, EncodeOptions } from './tokenizer.js';

export const data = {
  readIdx, fashionMnist, FASHION_MNIST_CLASSES, TensorLoader, permutation, split, kFold, classCounts,
  readCsvDataset, readJsonlDataset, readConll, parseCsv, imageFolder, loadImage, IMAGENET_MEAN, IMAGENET_STD, DataLoader, ImageDataset,
  WordNet, synonymReplacement, randomDeletion, randomSwap, rng, WordPieceTokenizer, ByteLevelBPETokenizer,
} as const;
