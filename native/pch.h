// Precompiled header: the heavy includes every translation unit shares.
#pragma once
#include <torch/torch.h>
#include <napi.h>
