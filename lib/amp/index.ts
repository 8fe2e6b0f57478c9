// Mixed precision: torch.autocast and the gradient scaler for float16.
export {
  autocast,
  isAutocastEnabled,
  getAutocastDtype,
  checkAutocastSupported,
  type AutocastDeviceType,
  type AutocastDtype,
  type AutocastOptions,
} from './autocast.js';
export { GradScaler, type GradScalerOptions, type GradScalerState } from './grad-scaler.js';

import { autocast, isAutocastEnabled, getAutocastDtype } from './autocast.js';
import { GradScaler } from './grad-scaler.js';
/** torch.amp: autocast and GradScaler under one name, as in PyTorch. */
export const amp = { autocast, isAutocastEnabled, getAutocastDtype, GradScaler } as const;
