// A move-only `void(error_code, uint64_t first_seq)` callable, the completion of
// spool::append. Asio completion handlers are move-only, so std::function (copyable targets)
// does not fit and std::move_only_function is C++23. Targets up to 48 bytes are stored
// inline, so an append allocates nothing for its callback (same design as
// wal::durable_callback, whose signature differs).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

#include "base/result.h"

namespace sqsrelay::spool {

class append_callback;

namespace detail {
template <class F>
concept append_callback_target = !std::same_as<std::decay_t<F>, append_callback> &&
                                 std::invocable<std::decay_t<F>&, error_code, uint64_t>;
}  // namespace detail

class append_callback {
 public:
  append_callback() noexcept = default;

  template <detail::append_callback_target F>
  // NOLINTNEXTLINE(google-explicit-constructor,bugprone-forwarding-reference-overload)
  append_callback(F&& f) {
    using T = std::decay_t<F>;
    if constexpr (fits_inline<T>) {
      ::new (static_cast<void*>(buf_)) T(std::forward<F>(f));
      ops_ = &inline_ops<T>;
    } else {
      ::new (static_cast<void*>(buf_)) T*(new T(std::forward<F>(f)));
      ops_ = &heap_ops<T>;
    }
  }

  append_callback(append_callback&& o) noexcept : ops_(std::exchange(o.ops_, nullptr)) {
    if (ops_) ops_->move(buf_, o.buf_);
  }

  append_callback& operator=(append_callback&& o) noexcept {
    if (this != &o) {
      reset();
      ops_ = std::exchange(o.ops_, nullptr);
      if (ops_) ops_->move(buf_, o.buf_);
    }
    return *this;
  }

  append_callback(const append_callback&) = delete;
  append_callback& operator=(const append_callback&) = delete;
  ~append_callback() { reset(); }

  explicit operator bool() const noexcept { return ops_ != nullptr; }

  // Requires a target.
  void operator()(error_code ec, uint64_t first_seq) { ops_->invoke(buf_, ec, first_seq); }

 private:
  static constexpr size_t inline_size = 48;

  struct ops {
    void (*invoke)(void* self, error_code ec, uint64_t first_seq);
    void (*move)(void* dst, void* src) noexcept;  // move-constructs dst, destroys src
    void (*destroy)(void* self) noexcept;
  };

  template <class T>
  static constexpr bool fits_inline =
      sizeof(T) <= inline_size &&
      alignof(T) <= alignof(std::max_align_t) && std::is_nothrow_move_constructible_v<T>;

  template <class T>
  static constexpr ops inline_ops = {
      [](void* self, error_code ec, uint64_t s) { (*static_cast<T*>(self))(ec, s); },
      [](void* dst, void* src) noexcept {
        ::new (dst) T(std::move(*static_cast<T*>(src)));
        static_cast<T*>(src)->~T();
      },
      [](void* self) noexcept { static_cast<T*>(self)->~T(); },
  };

  template <class T>
  static constexpr ops heap_ops = {
      [](void* self, error_code ec, uint64_t s) { (**static_cast<T**>(self))(ec, s); },
      [](void* dst, void* src) noexcept { ::new (dst) T*(*static_cast<T**>(src)); },
      [](void* self) noexcept { delete *static_cast<T**>(self); },
  };

  void reset() noexcept {
    if (ops_) std::exchange(ops_, nullptr)->destroy(buf_);
  }

  alignas(std::max_align_t) unsigned char buf_[inline_size];
  const ops* ops_ = nullptr;
};

}  // namespace sqsrelay::spool
