// Typed access to inputs and outputs through a header from
// `tvmopt compile --emit-header model.h`:
//
//   tvmopt::Model lib("model.so");
//   lib.CheckSignature(std::string(model::kSignature));
//   auto outputs = lib.Run({tvmopt::MakeArray<model::inputs::image>(pixels)});
//   std::vector<float> probs = tvmopt::ValuesOf<model::outputs::probs>(outputs);
#ifndef TVMOPT_TYPED_H_
#define TVMOPT_TYPED_H_

#include <tvmopt/error.h>
#include <tvmopt/npy.h>

#include <cstring>
#include <string>
#include <vector>

namespace tvmopt {

// A host array for the input `Spec`, from exactly Spec::size values.
template <class Spec>
HostArray MakeArray(const std::vector<typename Spec::type>& values) {
  if (static_cast<int64_t>(values.size()) != Spec::size) {
    throw Error("input '" + std::string(Spec::name) + "' takes " + std::to_string(Spec::size) +
                " values, got " + std::to_string(values.size()));
  }
  HostArray array{std::string(Spec::dtype), {Spec::shape.begin(), Spec::shape.end()}, {}};
  array.bytes.resize(values.size() * sizeof(typename Spec::type));
  std::memcpy(array.bytes.data(), values.data(), array.bytes.size());
  return array;
}

// The values of output `Spec` among the outputs of Model::Run.
template <class Spec>
std::vector<typename Spec::type> ValuesOf(const std::vector<HostArray>& outputs) {
  const HostArray& array = outputs.at(Spec::index);
  if (array.dtype != Spec::dtype) {
    throw Error("output '" + std::string(Spec::name) + "' is " + array.dtype + ", expected " +
                std::string(Spec::dtype));
  }
  std::vector<typename Spec::type> values(array.NumElements());
  std::memcpy(values.data(), array.bytes.data(), array.bytes.size());
  return values;
}

}  // namespace tvmopt

#endif  // TVMOPT_TYPED_H_
