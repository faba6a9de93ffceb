// A model: the top-level graph plus the ModelProto fields ptq keeps for round trips.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ptq/ir/graph.h"

namespace ptq::ir {

struct OpsetImport {
  std::string domain;  // "" for the default ONNX domain
  int64_t version = 0;
  bool operator==(const OpsetImport& o) const { return domain == o.domain && version == o.version; }
};

struct Model {
  int64_t ir_version = 0;
  std::vector<OpsetImport> opset_import;
  std::string producer_name;
  std::string producer_version;
  std::string domain;
  int64_t model_version = 0;
  std::string doc_string;
  std::vector<std::pair<std::string, std::string>> metadata_props;
  std::vector<std::string> functions;      // serialized FunctionProto, untouched
  std::vector<std::string> training_info;  // serialized TrainingInfoProto, untouched
  std::string unknown_fields;              // protobuf fields this build does not know
  Graph graph;

  // Where the model came from (not saved): its path and the external data files it read.
  std::string source_path;
  std::vector<std::string> external_data_files;

  // The imported opset version of a domain ("" and "ai.onnx" are the same), 0 if not imported.
  int64_t opset(const std::string& domain = "") const;
};

}  // namespace ptq::ir
