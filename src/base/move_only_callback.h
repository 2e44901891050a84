// A move-only `void(Args...)` callable. std::function needs copyable targets, which rules
// out Asio completion handlers and promises; std::move_only_function is C++23. Targets up
// to 48 bytes are stored inline, so registering a callback allocates nothing (the WAL's
// durability waiters and the spool's append completions are on hot paths).
#pragma once

#include <concepts>
#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace sqsrelay {

template <class... Args>
class move_only_callback;

namespace detail {
template <class F, class... Args>
concept move_only_callback_target =
    !std::same_as<std::decay_t<F>, move_only_callback<Args...>> &&
    std::invocable<std::decay_t<F>&, Args...>;
}  // namespace detail

template <class... Args>
class move_only_callback {
 public:
  move_only_callback() noexcept = default;

  // Implicit like std::function; the constraint keeps it from hiding the move constructor.
  template <class F>
    requires detail::move_only_callback_target<F, Args...>
  // NOLINTNEXTLINE(google-explicit-constructor,bugprone-forwarding-reference-overload)
  move_only_callback(F&& f) {
    using T = std::decay_t<F>;
    if constexpr (fits_inline<T>) {
      ::new (static_cast<void*>(buf_)) T(std::forward<F>(f));
      ops_ = &inline_ops<T>;
    } else {
      ::new (static_cast<void*>(buf_)) T*(new T(std::forward<F>(f)));
      ops_ = &heap_ops<T>;
    }
  }

  move_only_callback(move_only_callback&& o) noexcept : ops_(std::exchange(o.ops_, nullptr)) {
    if (ops_) ops_->move(buf_, o.buf_);
  }

  move_only_callback& operator=(move_only_callback&& o) noexcept {
    if (this != &o) {
      reset();
      ops_ = std::exchange(o.ops_, nullptr);
      if (ops_) ops_->move(buf_, o.buf_);
    }
    return *this;
  }

  move_only_callback(const move_only_callback&) = delete;
  move_only_callback& operator=(const move_only_callback&) = delete;
  ~move_only_callback() { reset(); }

  explicit operator bool() const noexcept { return ops_ != nullptr; }

  // Requires a target.
  void operator()(Args... args) { ops_->invoke(buf_, std::forward<Args>(args)...); }

 private:
  static constexpr size_t inline_size = 48;

  struct ops {
    void (*invoke)(void* self, Args... args);
    void (*move)(void* dst, void* src) noexcept;  // move-constructs dst, destroys src
    void (*destroy)(void* self) noexcept;
  };

  template <class T>
  static constexpr bool fits_inline =
      sizeof(T) <= inline_size && alignof(T) <= alignof(std::max_align_t) &&
      std::is_nothrow_move_constructible_v<T>;

  template <class T>
  static constexpr ops inline_ops = {
      [](void* self, Args... args) { (*static_cast<T*>(self))(std::forward<Args>(args)...); },
      [](void* dst, void* src) noexcept {
        ::new (dst) T(std::move(*static_cast<T*>(src)));
        static_cast<T*>(src)->~T();
      },
      [](void* self) noexcept { static_cast<T*>(self)->~T(); },
  };

  template <class T>
  static constexpr ops heap_ops = {
      [](void* self, Args... args) { (**static_cast<T**>(self))(std::forward<Args>(args)...); },
      [](void* dst, void* src) noexcept { ::new (dst) T*(*static_cast<T**>(src)); },
      [](void* self) noexcept { delete *static_cast<T**>(self); },
  };

  void reset() noexcept {
    if (ops_) std::exchange(ops_, nullptr)->destroy(buf_);
  }

  alignas(std::max_align_t) unsigned char buf_[inline_size];
  const ops* ops_ = nullptr;
};

}  // namespace sqsrelay
