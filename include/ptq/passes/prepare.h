// Graph preparation before calibration: drop inference no-ops, fold BatchNormalization, clean up.
#pragma once

#include <string>
#include <vector>

#include "ptq/ir/model.h"

namespace ptq::passes {

// One line per change, for the log and the report ("folded BatchNormalization 'bn1' into 'conv1'").
using Changes = std::vector<std::string>;

// IR < 4 listed every initializer as a graph input too; ORT then treats weights as overridable
// inputs, which blocks constant folding and every QDQ fusion. Keeps them initializers only.
void remove_initializers_from_inputs(ir::Graph& graph, Changes& changes);
// Removes Identity and inference-mode Dropout; graph input and output names stay as they were.
void remove_noops(ir::Graph& graph, Changes& changes);
// Runs nodes whose inputs are all constants (Cast, Reshape, Transpose, ... of weights) once and
// stores their outputs as initializers; Q/DQ, random and control-flow ops are left alone.
void fold_constants(ir::Model& model, Changes& changes);
// Folds BatchNormalization into the Conv or ConvTranspose that feeds only it (constant weights).
void fold_batchnorm(ir::Graph& graph, Changes& changes);
// Merges a Mul or Div by a scalar constant that only another one reads into a single Mul
// (PP-OCRv4's HardSwish "Div(6)" followed by its affine block's scale): one float pass less
// between the DQ and the next Q in ORT.
void merge_constant_scales(ir::Graph& graph, Changes& changes);
// Folds a Mul or Div by a constant that is a scalar or per output channel into the Conv that
// alone feeds it (Caffe Scale layers, PaddlePaddle's learnable affine blocks), as BatchNormalization.
// The Conv's output keeps its Q/DQ pair; the Mul would otherwise run in float after the DQ.
void fold_scale_into_conv(ir::Graph& graph, Changes& changes);
// Folds an Add of a constant that is a scalar or per output channel into the bias of the Conv that
// alone feeds it, where the sum is the input of a written-out HardSwish (PP-OCRv4-rec's affine
// blocks): the HardSwish's int8 Add and Mul then read the Conv's quantized output directly.
void fold_shift_into_hardswish_conv(ir::Graph& graph, Changes& changes);
// Folds a constant zero Pad of spatial axes into the Conv that alone reads it (TF "same" padding
// exported as Pad -> Conv): left in place it sits between DQ and Q and ORT runs it in float.
void fold_pad_into_conv(ir::Graph& graph, Changes& changes);
// Folds a space-to-depth written as strided Slices of one tensor and a Concat of all its phases
// (YOLOv5's and YOLOX's Focus stem) into the Conv that alone reads the Concat: one Conv on the
// tensor itself with the kernel and stride scaled by the step (YOLOv5 6.0 made the same change
// to its models). ORT copies strided Slices element by element (2-3 ms of YOLOX-nano's 16).
void fold_space_to_depth_into_conv(ir::Graph& graph, Changes& changes);
// Removes nodes whose outputs nobody reads and initializers nobody uses (not graph inputs/outputs).
void remove_dead_code(ir::Graph& graph, Changes& changes);

// All of the above, in order, with ir::debug_verify after each.
Changes prepare_for_quantization(ir::Model& model);

}  // namespace ptq::passes
