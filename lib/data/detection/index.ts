// data.detection: detection data sets (COCO JSON, Pascal VOC XML), box-aware
// transforms, and batches of images with their targets.
import { readCoco, readVoc, BACKGROUND } from './read.js';
import { applyDetectionTransforms, detectionResizeSize, bilinearResizeChw } from './transforms.js';
import { DetectionDataset, DetectionLoader, detectionTensors } from './dataset.js';
import { parseXml } from './xml.js';
import { fashionScenes, SceneDataset } from './scenes.js';
import { drawBoxes, BOX_PALETTE } from './draw.js';

export type { DetectionSample, DetectionData, CocoData, CocoOptions, VocOptions, BoxChecks } from './read.js';
export type { DetectionTransform, DetectionImage } from './transforms.js';
export type { DetectionItem, DetectionDatasetOptions, DetectionTarget, DetectionBatch, DetectionLoaderOptions } from './dataset.js';
export type { XmlElement } from './xml.js';
export type { FashionScenesOptions, Scene, ScenePlacement } from './scenes.js';
export type { DrawnBox, DrawOptions } from './draw.js';

export const detection = {
  readCoco,
  readVoc,
  BACKGROUND,
  DetectionDataset,
  DetectionLoader,
  detectionTensors,
  applyDetectionTransforms,
  detectionResizeSize,
  bilinearResizeChw,
  parseXml,
  fashionScenes,
  SceneDataset,
  drawBoxes,
  BOX_PALETTE,
} as const;
