// The project's one error currency: boost::system::result<T> with per-module errc enums.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

namespace sqsrelay {

template <class T>
using result = boost::system::result<T>;

using error_code = boost::system::error_code;

}  // namespace sqsrelay

// Propagates the error of a result-returning expression; yields its value otherwise.
#define SQSRELAY_TRY(var, expr)              \
  auto var##_result_ = (expr);               \
  if (!var##_result_) return var##_result_.error(); \
  auto var = std::move(*var##_result_)
