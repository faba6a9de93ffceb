// libFuzzer entry point for one target, chosen at compile time by PTQ_FUZZ_TARGET (e.g. npy).
#include "targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ptq::fuzz::PTQ_FUZZ_TARGET(data, size);
  return 0;
}
