// The one exception type tvmopt's C++ library throws: a one-line message
// saying what was expected and what was found.
#ifndef TVMOPT_ERROR_H_
#define TVMOPT_ERROR_H_

#include <stdexcept>
#include <string>

namespace tvmopt {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace tvmopt

#endif  // TVMOPT_ERROR_H_
