#pragma once
/// @file
/// The Transport concept: how `basic_client` moves bytes. libcurl is the default
/// (sturdy/curl_transport.hpp); any class with this shape plugs in.
///
/// A Transport `T` provides, callable on a const object from many threads at once:
///
///     sturdy::result<sturdy::http_head> T::send(const sturdy::http_request& request,
///                                               sturdy::response_sink& sink) const;
///
/// Contract:
/// - Sends `request` and hands the final response head to `sink.on_head`, then the body bytes to
///   `sink.on_data` as they arrive, on the calling thread. Returns the head when the body is complete.
/// - Error statuses are not errors here: a 429 is a head like any other. Errors are only what
///   prevented a complete exchange, as a `sturdy::error` of kind:
///   - `connection` when no reply could be had or the body was cut off;
///   - `timeout` when `request.connect_timeout`, `request.timeout` or `sink.progress_deadline()` passed;
///   - `cancelled` when `request.cancel` fired or a sink call returned false;
///   - `invalid_argument` when the request cannot be sent (a malformed URL).
/// - An exception thrown by the sink propagates out of `send` once the exchange is cleaned up.
/// - Never blocks past the earliest of the request's timeout, the sink's progress deadline, and a
///   cancellation.
///
/// An asynchronous transport (many exchanges on one thread, such as curl multi) adds an
/// `async_send` beside `send`; the client's synchronous API stays as it is.

#include <sturdy/http.hpp>
#include <sturdy/result.hpp>

#include <type_traits>
#include <utility>

namespace sturdy {

/// True when `T` has the Transport shape documented above.
template <class T, class = void>
struct is_transport : std::false_type {};

template <class T>
struct is_transport<T, std::void_t<decltype(std::declval<const T&>().send(std::declval<const http_request&>(),
                                                                           std::declval<response_sink&>()))>>
    : std::is_same<decltype(std::declval<const T&>().send(std::declval<const http_request&>(),
                                                          std::declval<response_sink&>())),
                   result<http_head>> {};

template <class T>
inline constexpr bool is_transport_v = is_transport<T>::value;

}  // namespace sturdy
