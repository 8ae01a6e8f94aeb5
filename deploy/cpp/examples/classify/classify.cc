// classify MODEL.so [IMAGE.npy]: the top class of an image (a gray one when none is given).
//
// Written against model.h, the header generated with the library: if the model's input or
// output is renamed, reshaped or retyped, this file stops compiling; if a different library is
// given at run time, CheckSignature refuses it.
#include <tvmopt/model.h>
#include <tvmopt/typed.h>

#include <algorithm>
#include <iostream>

#include "model.h"

using Image = model::inputs::image;
using Probs = model::outputs::probs;
static_assert(Image::shape.size() == 4 && Image::shape[1] == 3, "this app feeds RGB images");

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::cerr << "usage: classify MODEL.so [IMAGE.npy]\n";
    return 2;
  }
  try {
    tvmopt::Model library(argv[1]);
    library.CheckSignature(std::string(model::kSignature));
    tvmopt::HostArray image =
        argc == 3 ? tvmopt::ReadNpy(argv[2])
                  : tvmopt::MakeArray<Image>(std::vector<Image::type>(Image::size, 0.5f));
    std::vector<Probs::type> probs = tvmopt::ValuesOf<Probs>(library.Run({image}));
    auto best = std::max_element(probs.begin(), probs.end());
    std::cout << "class " << (best - probs.begin()) << " (" << Probs::name << " " << *best << ")\n";
  } catch (const tvmopt::Error& err) {
    std::cerr << "classify: error: " << err.what() << "\n";
    return 2;
  }
  return 0;
}
