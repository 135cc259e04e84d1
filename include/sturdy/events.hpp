#pragma once
/// @file
/// One sink for what every policy and the client report, as typed events.
///
///     struct log_sink : sturdy::event_sink {
///         void on_retry(const sturdy::event_source& from, const sturdy::retry_event& e) override {
///             std::clog << from.policy << " retries " << from.route << " in " << e.delay.count() << '\n';
///         }
///     };
///     opts.events = std::make_shared<log_sink>();           // client_options: every call's events
///
/// Each policy still has its own hooks (`retry_options::on_retry`...) as shorthand; a policy calls
/// its hook first, then the sink of the call it is working for (`call_context::events`). Events of
/// one call may come from several threads at once (hedges, shadows), so a sink must be safe to call
/// concurrently. The references an event holds are valid only during the call that delivers it.
/// A call holds its sink by pointer: the client owns it (`client_options::events`), so it lives as
/// long as the client; whoever sets `call_context::events` directly keeps the sink alive until the
/// call and its branches (a shadow may end after the call returned on an event-driven executor) end.

#include <algorithm>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace sturdy {

struct retry_event;
struct circuit_state_event;
struct circuit_rejection_event;
struct rate_limited_event;
struct bulkhead_event;
struct fallback_event;
struct fallback_skip_event;
struct rollback_event;
struct shadow_event;
struct hedge_event;
struct attempt_start;
struct attempt_record;
struct call_info;

/// Who reported an event: the policy's name (`policy_options::name`; "client" for the client's
/// own) and the route its call was on (a fallback target, a split arm; empty for the client's
/// own endpoint).
struct event_source {
    std::string_view policy;
    std::string_view route;
};

/// Receives the events of every call it is given to. Override what you need; the rest do nothing.
class event_sink {
public:
    virtual ~event_sink() = default;

    /// retry.hpp: before each retry's wait.
    virtual void on_retry(const event_source&, const retry_event&) {}
    /// circuit_breaker.hpp: a breaker changed state (delivered to the call whose outcome changed it).
    virtual void on_circuit_state(const event_source&, const circuit_state_event&) {}
    /// circuit_breaker.hpp: a breaker refused a call.
    virtual void on_circuit_rejected(const event_source&, const circuit_rejection_event&) {}
    /// rate_limiter.hpp: a limiter held a call back or refused it.
    virtual void on_rate_limited(const event_source&, const rate_limited_event&) {}
    /// bulkhead.hpp: a call queued, was admitted after a wait, or was refused.
    virtual void on_bulkhead(const event_source&, const bulkhead_event&) {}
    /// fallback.hpp: a chain moved on to its next target.
    virtual void on_fallback(const event_source&, const fallback_event&) {}
    /// fallback.hpp: a chain passed over a target without trying it.
    virtual void on_fallback_skip(const event_source&, const fallback_skip_event&) {}
    /// traffic_split.hpp: a split's guard rolled an arm back.
    virtual void on_rollback(const event_source&, const rollback_event&) {}
    /// traffic_split.hpp: a shadow copy of a call ended.
    virtual void on_shadow(const event_source&, const shadow_event&) {}
    /// hedging.hpp: a hedged attempt started.
    virtual void on_hedge(const event_source&, const hedge_event&) {}
    /// The client: an attempt is about to be sent (call_info.hpp); its `on_attempt` always follows,
    /// also when an exception leaves the attempt, so starts minus ends is what is in flight.
    virtual void on_attempt_start(const event_source&, const attempt_start&) {}
    /// The client: an attempt ended (call_info.hpp), whatever its outcome.
    virtual void on_attempt(const event_source&, const attempt_record&) {}
    /// The client: a call ended; its report, as `reply.call` or `error.call()` carries it.
    virtual void on_call(const event_source&, const call_info&) {}
};

namespace detail {

inline void deliver(event_sink& s, const event_source& f, const retry_event& e) { s.on_retry(f, e); }
inline void deliver(event_sink& s, const event_source& f, const circuit_state_event& e) { s.on_circuit_state(f, e); }
inline void deliver(event_sink& s, const event_source& f, const circuit_rejection_event& e) {
    s.on_circuit_rejected(f, e);
}
inline void deliver(event_sink& s, const event_source& f, const rate_limited_event& e) { s.on_rate_limited(f, e); }
inline void deliver(event_sink& s, const event_source& f, const bulkhead_event& e) { s.on_bulkhead(f, e); }
inline void deliver(event_sink& s, const event_source& f, const fallback_event& e) { s.on_fallback(f, e); }
inline void deliver(event_sink& s, const event_source& f, const fallback_skip_event& e) { s.on_fallback_skip(f, e); }
inline void deliver(event_sink& s, const event_source& f, const rollback_event& e) { s.on_rollback(f, e); }
inline void deliver(event_sink& s, const event_source& f, const shadow_event& e) { s.on_shadow(f, e); }
inline void deliver(event_sink& s, const event_source& f, const hedge_event& e) { s.on_hedge(f, e); }
inline void deliver(event_sink& s, const event_source& f, const attempt_start& e) { s.on_attempt_start(f, e); }
inline void deliver(event_sink& s, const event_source& f, const attempt_record& e) { s.on_attempt(f, e); }
inline void deliver(event_sink& s, const event_source& f, const call_info& e) { s.on_call(f, e); }

/// The one way a policy reports: its own hook first (if set), then the call's sink (if any).
template <class Hook, class Event>
void emit(const Hook& hook, event_sink* sink, const event_source& source, const Event& event) {
    if (hook) hook(event);
    if (sink) deliver(*sink, source, event);
}

}  // namespace detail

/// Passes every event on to several sinks, in the order given: how `sturdy::metrics` and a sink of
/// your own both hear a client's events.
///
///     auto stats = std::make_shared<sturdy::metrics>();
///     opts.events = std::make_shared<sturdy::event_fanout>(
///         std::vector<std::shared_ptr<sturdy::event_sink>>{stats, std::make_shared<log_sink>()});
class event_fanout : public event_sink {
public:
    /// Sinks to pass events to, in this order; null ones are left out.
    explicit event_fanout(std::vector<std::shared_ptr<event_sink>> sinks) : sinks_(std::move(sinks)) {
        sinks_.erase(std::remove(sinks_.begin(), sinks_.end(), nullptr), sinks_.end());
    }

    void on_retry(const event_source& f, const retry_event& e) override { each(f, e); }
    void on_circuit_state(const event_source& f, const circuit_state_event& e) override { each(f, e); }
    void on_circuit_rejected(const event_source& f, const circuit_rejection_event& e) override { each(f, e); }
    void on_rate_limited(const event_source& f, const rate_limited_event& e) override { each(f, e); }
    void on_bulkhead(const event_source& f, const bulkhead_event& e) override { each(f, e); }
    void on_fallback(const event_source& f, const fallback_event& e) override { each(f, e); }
    void on_fallback_skip(const event_source& f, const fallback_skip_event& e) override { each(f, e); }
    void on_rollback(const event_source& f, const rollback_event& e) override { each(f, e); }
    void on_shadow(const event_source& f, const shadow_event& e) override { each(f, e); }
    void on_hedge(const event_source& f, const hedge_event& e) override { each(f, e); }
    void on_attempt_start(const event_source& f, const attempt_start& e) override { each(f, e); }
    void on_attempt(const event_source& f, const attempt_record& e) override { each(f, e); }
    void on_call(const event_source& f, const call_info& e) override { each(f, e); }

private:
    template <class Event>
    void each(const event_source& f, const Event& e) {
        for (const auto& s : sinks_) detail::deliver(*s, f, e);
    }
    std::vector<std::shared_ptr<event_sink>> sinks_;
};

}  // namespace sturdy
