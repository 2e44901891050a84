// Translation between SQS's legacy Query protocol (form-encoded requests, XML responses; used by
// Debian's AWS CLI v2.9 and SDKs older than the 2024 switch to JSON) and the AWS JSON 1.0 shapes
// the handlers speak. The handlers never see the Query protocol:
//
//   params  = parse_form(body)                               -> or query_error_xml(...)
//   request = query_to_json_request(query_action(params), params)
//   reply   = handler(request)                               // JSON-protocol result object
//   body    = json_result_to_query_xml(action, reply, request_id)
//
// Member names and Query serialization names come from the Query-protocol SQS model that ships
// with AWS CLI v2.9 (awscli/botocore/data/sqs/2012-11-05/service-2.json); see query_codec.cc.
// Stateless and thread-safe.
#pragma once

#include <boost/assert/source_location.hpp>
#include <boost/json/object.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/result.h"

namespace sqsrelay::sqs {

// Decoded (percent-decoded, '+' as space) form parameters, in request order. parse_form
// guarantees names and values are valid UTF-8, as a JSON body would be.
using query_params = std::vector<std::pair<std::string, std::string>>;

// Why a Query request was rejected. Each value maps to one AWS error code (aws_error_code());
// all are sender faults; answer them with HTTP 400.
enum class query_errc {
  malformed_query_string = 1,  // bad %-escape, invalid UTF-8, bad list index, list gap, repeat
  invalid_parameter_value,     // not an integer/boolean, out of range, duplicate map key
  missing_parameter,           // a list item's value, a map entry's .Name/.Key or .Value
  missing_action,              // no Action parameter
  invalid_action,              // Action is not an SQS action
};

// "MalformedQueryString", "InvalidParameterValue", "MissingParameter", "MissingAction",
// "InvalidAction".
[[nodiscard]] std::string_view aws_error_code(query_errc e) noexcept;
[[nodiscard]] const boost::system::error_category& query_category() noexcept;
[[nodiscard]] error_code make_error_code(query_errc e) noexcept;

// A rejected Query request: what to put in <Code> (aws_error_code(code)) and <Message>.
struct query_error {
  query_errc code;
  std::string message;  // AWS-style; names the parameter as the client spelled it
};

// Lets query_result<T>::value() throw boost::system::system_error like result<T> does. The data
// path tests the result instead.
[[noreturn]] void throw_exception_from_error(const query_error& e,
                                             const boost::source_location& loc);

template <class T>
using query_result = boost::system::result<T, query_error>;

// Parses an application/x-www-form-urlencoded body or URL query string. Pairs without '=' get
// an empty value; empty pairs ("a=1&&b=2") are skipped. Rejects a '%' not followed by two hex
// digits and names or values that do not decode to UTF-8 (malformed_query_string). Raw
// characters RFC 3986 would want escaped are accepted, as form parsers usually do.
[[nodiscard]] query_result<query_params> parse_form(std::string_view body);

// The first Action parameter's value, or "" when there is none.
[[nodiscard]] std::string_view query_action(const query_params& params) noexcept;

// Converts the Query parameters of `action` into the JSON-protocol request object the handler
// for `action` takes: integers become JSON numbers, everything else (blobs stay base64 text)
// strings, `Attribute.N.Name/Value` a map, `AttributeName.N` an array, and so on. An empty list
// as botocore sends it (`AttributeNames=`, `Entries=`) becomes []. Parameters the action does
// not define (Version, X-Amz-*, AUTHPARAMS, unknown members) are ignored. Required members are
// NOT checked: the handlers must check them anyway for JSON clients.
[[nodiscard]] query_result<boost::json::object> query_to_json_request(std::string_view action,
                                                                      const query_params& params);

// Serializes the JSON-protocol result of `action` as the Query response:
//   <{Action}Response xmlns="http://queue.amazonaws.com/doc/2012-11-05/">
//     <{Action}Result>...</{Action}Result>   (only for actions with an output shape)
//     <ResponseMetadata><RequestId>..</RequestId></ResponseMetadata>
//   </{Action}Response>
// Members are written in model order; null and unknown members, and members whose JSON type
// does not fit the model, are skipped. Actions without an output shape (DeleteQueue, TagQueue,
// ...) get no Result element; so do the message-move-task actions, which are request-side only
// (answer them with query_error_xml) because the CLI v2.9 model predates them. An action this
// codec does not know gets a Response element with its non-alphanumeric characters dropped.
// Text is escaped so XML parsers read back exactly the original string (CR as &#xD;); code
// points XML 1.0 cannot carry and invalid UTF-8 become U+FFFD.
[[nodiscard]] std::string json_result_to_query_xml(std::string_view action,
                                                   const boost::json::object& result,
                                                   std::string_view request_id);

// <ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><Error><Type>Sender|Receiver
// </Type><Code>..</Code><Message>..</Message><Detail/></Error><RequestId>..</RequestId>
// </ErrorResponse>
[[nodiscard]] std::string query_error_xml(bool sender_fault, std::string_view code,
                                          std::string_view message, std::string_view request_id);

}  // namespace sqsrelay::sqs

namespace boost::system {
template <>
struct is_error_code_enum<sqsrelay::sqs::query_errc> : std::true_type {};
}  // namespace boost::system
