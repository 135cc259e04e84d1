#pragma once
/// @file
/// The client most programs want: `basic_client` over libcurl (`curl_transport`), with the
/// official SDKs' retry contract.

#include <sturdy/basic_client.hpp>
#include <sturdy/curl_transport.hpp>
#include <sturdy/retry.hpp>

namespace sturdy {

// libcurl's transport is the default Transport wherever it is available.
template <class Transport = curl_transport, class Policy>
class basic_client;

/// The client most programs want: libcurl, with the official SDKs' retry contract.
using client = basic_client<curl_transport, retry_policy>;

}  // namespace sturdy
