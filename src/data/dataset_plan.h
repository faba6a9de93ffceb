// Internal: finding the files of a dataset (folder layouts and list files) without reading them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ptq/data/dataset.h"

namespace ptq::data::detail {

// The kind of a data file by extension (case-insensitive), or nullopt for other files.
std::optional<Dataset::FileKind> file_kind(const std::string& path);

// Byte-wise order, except that digit runs compare by value (test_data_set_10 after _9).
bool natural_less(const std::string& a, const std::string& b);

// Lists the samples under `path` (see open_dataset) and sets `layout`.
Dataset::Plan plan_dataset(const std::string& path, const std::vector<InputSpec>& inputs,
                           DataLayout* layout);

}  // namespace ptq::data::detail
