#pragma once
/// @file
/// The umbrella header: everything a sturdy user needs.

#include <sturdy/version.hpp>

#include <sturdy/error.hpp>
#include <sturdy/safe_text.hpp>
#include <sturdy/result.hpp>
#include <sturdy/cancellation.hpp>
#include <sturdy/clock.hpp>

#include <sturdy/http.hpp>
#include <sturdy/transport.hpp>
#include <sturdy/curl_transport.hpp>
#include <sturdy/sse.hpp>

#include <sturdy/usage.hpp>
#include <sturdy/pricing.hpp>
#include <sturdy/chat.hpp>
#include <sturdy/chat_accumulator.hpp>
#include <sturdy/models.hpp>
#include <sturdy/model_catalog.hpp>
#include <sturdy/embeddings.hpp>
#include <sturdy/similarity.hpp>
#include <sturdy/tokens.hpp>
#include <sturdy/context_window.hpp>
#include <sturdy/call_info.hpp>
#include <sturdy/observation.hpp>

#include <sturdy/properties.hpp>
#include <sturdy/options.hpp>
#include <sturdy/providers.hpp>

// Policies: the seam, composition, then each policy. See pipeline.hpp for composition order.
#include <sturdy/policy_options.hpp>
#include <sturdy/events.hpp>
#include <sturdy/policy.hpp>
#include <sturdy/executor.hpp>
#include <sturdy/pipeline.hpp>
#include <sturdy/dynamic_pipeline.hpp>
#include <sturdy/per_route.hpp>
#include <sturdy/state_store.hpp>
#include <sturdy/retry_after.hpp>
#include <sturdy/backoff.hpp>
#include <sturdy/retry.hpp>
#include <sturdy/retry_budget.hpp>
#include <sturdy/timeout.hpp>
#include <sturdy/circuit_breaker.hpp>
#include <sturdy/rate_limiter.hpp>
#include <sturdy/bulkhead.hpp>
#include <sturdy/fallback.hpp>
#include <sturdy/traffic_split.hpp>
#include <sturdy/hedging.hpp>
#include <sturdy/metrics.hpp>

#include <sturdy/basic_client.hpp>
#include <sturdy/client.hpp>
