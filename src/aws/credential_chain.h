// Where a client's AWS credentials come from: a chain of providers tried in order, and a
// cache in front of it that refreshes expiring credentials ahead of time.
//
// The default chain (make_default_chain), in the order botocore uses:
//   1. environment   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
//   2. profile       the shared `credentials` file (AWS_SHARED_CREDENTIALS_FILE, default
//                    ~/.aws/credentials, section [name]), then the `config` file
//                    (AWS_CONFIG_FILE, default ~/.aws/config, section [profile name] or
//                    [default]); the profile is --profile, else AWS_PROFILE, else
//                    AWS_DEFAULT_PROFILE, else "default". A profile named in one of those
//                    ways that neither file has stops the chain (botocore's
//                    ProfileNotFound); only the implicit "default" may be absent.
//   3. container     AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (on http://169.254.170.2) or
//                    AWS_CONTAINER_CREDENTIALS_FULL_URI, with the Authorization header from
//                    AWS_CONTAINER_AUTHORIZATION_TOKEN or AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
//   4. imds          EC2 instance metadata, IMDSv2: PUT /latest/api/token (TTL header), GET
//                    /latest/meta-data/iam/security-credentials/ (role), GET .../<role>;
//                    AWS_EC2_METADATA_SERVICE_ENDPOINT overrides http://169.254.169.254,
//                    AWS_EC2_METADATA_DISABLED=true skips it
// A provider that is not configured answers `not_found` and the chain moves on; one that is
// configured but fails (a profile without a secret, a container endpoint answering 500)
// stops the chain with its error, as botocore does, except IMDS whose failures mean "not on
// EC2". When nothing is found the error names every provider tried.
//
// Refresh: credentials with an expiration are served from the cache until `refresh_ahead`
// (5 min) before they expire; inside that window the first caller starts a background
// refresh and keeps getting the current credentials; within `mandatory_ahead` (1 min) of
// expiry callers wait for the refresh. One refresh at a time; concurrent callers share it.
// A failed background refresh keeps the old credentials until the mandatory window, and is
// retried at most every `retry_interval`. A provider may hand out credentials that are
// already inside the refresh window (a lifetime under 5 min): then a successful refresh is
// followed by the next one no sooner than `min_refresh_interval`, and until then the
// credentials are used even inside the mandatory window, up to their expiry (as botocore
// uses "refreshed credentials that are still expired" rather than fetch per request).
// Credentials that arrive already expired are an error.
//
// Secrets never appear in errors or logs (aws::secret_string).
// Thread-safety: a chain and its providers are used from one executor (single-threaded).
// Lifetime: a background refresh runs as a detached coroutine on that executor and uses the
// chain and its HTTP client; destroy the chain only when the executor has no more work (e.g.
// after io_context::run() returned), never with a refresh in flight.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include "aws/credentials.h"
#include "base/clock.h"

namespace sqsrelay::http {
class client;
}

namespace sqsrelay::aws {

struct timed_credentials {
  credentials creds;
  std::optional<std::chrono::system_clock::time_point> expiration;  // none: never expires
  std::string provider;  // which provider gave them ("environment", "profile default", ...)
};

struct credential_error {
  enum kind_t { not_found, failed } kind = failed;
  std::string message;  // never contains a secret
};
[[noreturn]] void throw_exception_from_error(const credential_error& e,
                                             const boost::source_location& loc);

template <class T>
using credential_result = boost::system::result<T, credential_error>;

// The process environment, injectable for tests.
using env_lookup = std::function<std::optional<std::string>(std::string_view name)>;
env_lookup process_env();
env_lookup map_env(std::map<std::string, std::string, std::less<>> vars);

class credential_provider {
 public:
  virtual ~credential_provider() = default;
  virtual std::string_view name() const = 0;
  virtual boost::asio::awaitable<credential_result<timed_credentials>> fetch() = 0;
};

// Fixed credentials (tests; `--access-key` style flags).
std::unique_ptr<credential_provider> make_static_provider(credentials c, std::string name);
std::unique_ptr<credential_provider> make_env_provider(env_lookup env);
// `profile` empty: AWS_PROFILE, else AWS_DEFAULT_PROFILE, else "default". A missing profile
// is `not_found` only when it is that implicit "default", else `failed`.
std::unique_ptr<credential_provider> make_profile_provider(env_lookup env, std::string profile);
// The HTTP providers use `http` (which must outlive them) with short timeouts of their own.
std::unique_ptr<credential_provider> make_container_provider(env_lookup env, http::client& http);
std::unique_ptr<credential_provider> make_imds_provider(env_lookup env, http::client& http);

// ---- Shared config files -------------------------------------------------------------------

// An INI file as AWS tools read it: [section] headers, `key = value` lines, `#`/`;` comments,
// and indented continuation lines under a key with an empty value (nested blocks such as
// `s3 =` / `  max_concurrent_requests = 10`, stored as "key.subkey").
using ini_section = std::map<std::string, std::string, std::less<>>;
using ini_file = std::map<std::string, ini_section, std::less<>>;
ini_file parse_ini(std::string_view text);

// The effective settings of a profile: the config file's [profile NAME] (or [default] for
// "default") overlaid by the credentials file's [NAME]. nullopt when neither has it.
struct profile_files {
  std::string credentials_path, config_path;  // resolved from the environment
  ini_file credentials, config;
};
profile_files load_profile_files(const env_lookup& env);
std::string profile_name(const env_lookup& env);
// Whether the profile was named (`flag` = --profile, AWS_PROFILE or AWS_DEFAULT_PROFILE)
// rather than being the implicit "default". A named profile that neither file has is an
// error, as botocore's ProfileNotFound (also for a named "default").
bool profile_is_named(const env_lookup& env, std::string_view flag);
// "the config profile (NAME) could not be found in CREDENTIALS_PATH or CONFIG_PATH"
std::string profile_not_found_message(const profile_files& f, std::string_view profile);
std::optional<ini_section> find_profile(const profile_files& f, std::string_view profile);
// A `[services NAME]` section of the config file (for endpoint_url per service), if any.
std::optional<ini_section> find_services(const profile_files& f, std::string_view name);

// ---- The chain and its cache ---------------------------------------------------------------

struct chain_options {
  std::chrono::seconds refresh_ahead{300};
  std::chrono::seconds mandatory_ahead{60};
  std::chrono::seconds retry_interval{10};     // between failed background refreshes
  std::chrono::seconds min_retry_interval{1};  // between failed blocking fetches
  // Between successful refreshes, when the provider's credentials are already due for one.
  std::chrono::seconds min_refresh_interval{30};
};

class credential_chain {
 public:
  credential_chain(boost::asio::any_io_executor ex,
                   std::vector<std::unique_ptr<credential_provider>> providers, const clock& clk,
                   chain_options o = {});
  ~credential_chain();
  credential_chain(const credential_chain&) = delete;
  credential_chain& operator=(const credential_chain&) = delete;

  // The current credentials; fetches or refreshes them as described above. The pointer
  // changes when the credentials do, so callers can cache work derived from them.
  boost::asio::awaitable<credential_result<std::shared_ptr<const timed_credentials>>> get();

  // Drops the cached credentials so the next get() fetches again (e.g. after the service
  // answered ExpiredToken).
  void invalidate();
  uint64_t fetches() const { return fetches_; }
  std::vector<std::string> provider_names() const;

 private:
  boost::asio::awaitable<credential_result<std::shared_ptr<const timed_credentials>>> fetch_all();
  boost::asio::awaitable<void> refresh_in_background();
  bool fresh_enough(std::chrono::seconds ahead) const;
  bool refreshed_recently() const;
  void refreshed(const credential_result<std::shared_ptr<const timed_credentials>>& r);

  boost::asio::any_io_executor ex_;
  std::vector<std::unique_ptr<credential_provider>> providers_;
  const clock& clock_;
  chain_options opts_;
  std::shared_ptr<const timed_credentials> current_;
  bool refreshing_ = false;
  std::vector<void*> waiters_;  // steady_timer* of callers waiting for a refresh
  std::optional<credential_error> last_error_;
  uint64_t fetches_ = 0;
  uint64_t completed_ = 0;  // refreshes finished, successful or not
  // After a failed fetch, no background refresh for `retry_interval` and no blocking fetch
  // for `min_retry_interval`: a failing metadata service is not hammered at request rate.
  std::optional<std::chrono::steady_clock::time_point> failed_at_;
  // The last successful fetch: the next one comes `min_refresh_interval` later at the
  // earliest, unless the credentials expire first (or are invalidated).
  std::optional<std::chrono::steady_clock::time_point> succeeded_at_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The default chain above. `http` serves the container and IMDS providers.
std::unique_ptr<credential_chain> make_default_chain(boost::asio::any_io_executor ex,
                                                     env_lookup env, http::client& http,
                                                     const clock& clk, std::string profile = {});

// Parses the JSON both the container endpoint and IMDS answer with: AccessKeyId,
// SecretAccessKey, Token, Expiration (ISO 8601, e.g. 2026-11-21T10:00:00Z).
credential_result<timed_credentials> parse_credentials_json(std::string_view body,
                                                            std::string provider);
// "2026-11-21T10:00:00Z" (optionally with fractional seconds, or +00:00).
std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view s);

}  // namespace sqsrelay::aws
