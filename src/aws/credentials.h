// AWS credentials: the secret type that can't leak through logging, and the server's key store.
#pragma once

#include <cstddef>
#include <functional>
#include <iosfwd>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sqsrelay::aws {

// A secret that can't be formatted or logged by accident: there is no operator<<, no fmt
// formatter and no implicit conversion, so `log("{}", s)` does not compile. `reveal()` is the
// one way out and is meant to be easy to grep for in review. The bytes are wiped (not just
// freed) when the object is destroyed, overwritten or moved from.
class secret_string {
 public:
  secret_string() = default;
  // Takes the string by value and wipes the argument's buffer after copying it; callers should
  // std::move their string in so no unwiped copy stays behind.
  explicit secret_string(std::string s);
  secret_string(const secret_string& other) = default;
  secret_string(secret_string&& other) noexcept = default;
  secret_string& operator=(secret_string other) noexcept;
  ~secret_string();

  std::string_view reveal() const { return {bytes_.data(), bytes_.size()}; }
  bool empty() const { return bytes_.empty(); }
  size_t size() const { return bytes_.size(); }

  // GoogleTest prints the operands of a failed assertion; this makes a secret print redacted
  // instead of as a raw byte dump of the object.
  friend void PrintTo(const secret_string& s, std::ostream* os);

 private:
  // A vector, not a std::string: moving a vector hands the heap buffer over, whereas moving a
  // short std::string copies it out of the inline buffer and leaves the old bytes behind.
  std::vector<char> bytes_;
};

struct credentials {
  std::string access_key_id;
  secret_string secret_access_key;
  std::string session_token;  // empty for long-term keys
};

// The access keys the server accepts, by access key id.
// Thread-safety: filled by `add` before the server starts; afterwards only the const members
// are called, from any number of threads at once. `add` must not run concurrently with anything.
class credential_store {
 public:
  // Adding an access key id that is already present replaces its entry.
  void add(credentials c);
  // The entry for `access_key_id` (exact, case-sensitive match), or nullptr. The pointer stays
  // valid for the store's lifetime.
  const credentials* find(std::string_view access_key_id) const;
  bool empty() const { return by_key_id_.empty(); }
  size_t size() const { return by_key_id_.size(); }

 private:
  std::map<std::string, credentials, std::less<>> by_key_id_;
};

}  // namespace sqsrelay::aws
