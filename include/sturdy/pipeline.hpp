#pragma once
/// @file
/// Static composition of policies: `compose(a, b, c)` runs a around b around c around the attempt.
///
/// Order matters, and reads outer to inner as written, as in Polly's pipelines:
///
///     compose(retry, breaker)   // each retry goes through the breaker: when it opens, the
///                               // retries that follow fail fast with circuit_open
///     compose(breaker, retry)   // the breaker sees one outcome per call, after all retries:
///                               // it opens on calls that failed despite retrying
///
/// A usual order, outermost first: deadline (the whole call), fallback or split (where to go),
/// retry (how often), breaker and limiter (per target), per-attempt timeout, the attempt.
/// Composition is resolved at compile time and costs nothing for the policies left out.

#include <sturdy/executor.hpp>
#include <sturdy/policy.hpp>

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

namespace sturdy {

/// Policies run outer to inner, in the order of the template arguments.
template <class... Policies>
class pipeline : public blocking_form<pipeline<Policies...>> {
public:
    /// Default-constructed policies (an empty pipeline is just the attempt).
    pipeline() = default;
    template <class... Given, class = std::enable_if_t<sizeof...(Given) == sizeof...(Policies) && (sizeof...(Given) > 0)>>
    explicit pipeline(Given&&... policies) : policies_(std::forward<Given>(policies)...) {}

    template <class T, class Next, class Done>
    void start(call_context& ctx, Next next, Done done) const {
        start_at<0, T>(ctx, next, std::move(done));
    }

    /// The I-th policy, outermost first.
    template <std::size_t I>
    const auto& get() const noexcept {
        return std::get<I>(policies_);
    }

private:
    /// What runs inside the I-th policy: the policies after it, then `next`.
    template <std::size_t I, class T, class Next>
    struct inner {
        const pipeline* self;
        Next next;
        template <class K>
        void operator()(call_context& ctx, K&& k) const {
            self->start_at<I, T>(ctx, next, std::forward<K>(k));
        }
    };

    template <std::size_t I, class T, class Next, class Done>
    void start_at(call_context& ctx, const Next& next, Done done) const {
        if constexpr (I == sizeof...(Policies)) {
            next(ctx, std::move(done));
        } else {
            detail::start_layer<T>(std::get<I>(policies_), ctx, inner<I + 1, T, Next>{this, next}, std::move(done));
        }
    }

    std::tuple<Policies...> policies_;
};

/// `compose(a, b, c)`: a pipeline running a, then b inside it, then c, then the attempt.
template <class... Policies>
pipeline<std::decay_t<Policies>...> compose(Policies&&... policies) {
    return pipeline<std::decay_t<Policies>...>(std::forward<Policies>(policies)...);
}

}  // namespace sturdy
