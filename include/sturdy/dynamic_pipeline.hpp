#pragma once
/// @file
/// Policies chosen at run time: `any_policy` holds any policy, `dynamic_pipeline` a list of them.
///
///     sturdy::dynamic_pipeline policies;
///     if (config.retries > 0) policies.add(sturdy::retry_policy(config.retries));
///     if (config.breaker) policies.add(breaker);
///     sturdy::basic_client<sturdy::curl_transport, sturdy::dynamic_pipeline> client(options, policies);
///
/// They cost a few allocations per attempt and policy (the continuations and the outcome are boxed
/// to cross the type erasure); static composition (pipeline.hpp) costs nothing.

#include <sturdy/executor.hpp>
#include <sturdy/policy.hpp>
#include <sturdy/result.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

namespace sturdy {

namespace detail {

/// Outcomes cross the type erasure boxed: a policy behind `any_policy` runs with this value type.
using boxed_value = std::shared_ptr<void>;
using boxed_outcome = result<boxed_value>;
using boxed_done = std::function<void(boxed_outcome)>;
using boxed_next = std::function<void(call_context&, boxed_done)>;

struct policy_concept {
    virtual ~policy_concept() = default;
    virtual void start(call_context& ctx, boxed_next next, boxed_done done) const = 0;
};

template <class Policy>
struct policy_model final : policy_concept {
    explicit policy_model(Policy p) : policy(std::move(p)) {}
    void start(call_context& ctx, boxed_next next, boxed_done done) const override {
        start_layer<boxed_value>(policy, ctx, std::move(next), std::move(done));
    }
    Policy policy;
};

// The continuations crossing the erasure have types that depend on T alone, so a run-time list of
// policies (each layer's continuation wrapping the next) instantiates a fixed set of types.

/// An outcome from inside, boxed for the erased policy.
template <class T>
struct box_outcome {
    boxed_done done;
    void operator()(result<T> r) const {
        if (!r) return done(r.error());
        done(boxed_value(std::make_shared<T>(std::move(*r))));
    }
};

/// What is inside an erased policy, taking boxed continuations.
template <class T, class Next>
struct boxing_next {
    Next next;
    void operator()(call_context& ctx, boxed_done k) const { next(ctx, box_outcome<T>{std::move(k)}); }
};

/// The erased policy's boxed outcome, unboxed for the caller.
template <class T, class Done>
struct unbox_outcome {
    Done done;
    void operator()(boxed_outcome r) {
        if (!r) return done(result<T>(r.error()));
        done(result<T>(std::move(*std::static_pointer_cast<T>(*r))));
    }
};

}  // namespace detail

/// Any policy, behind one type. Copies share the policy (and so its state).
class any_policy : public blocking_form<any_policy> {
public:
    /// No policy: the attempt runs as it is.
    any_policy() : self_(nothing()) {}

    template <class Policy, class = std::enable_if_t<!std::is_same_v<std::decay_t<Policy>, any_policy>>>
    any_policy(Policy policy)  // NOLINT: implicit, so policies of any type convert
        : self_(std::make_shared<const detail::policy_model<Policy>>(std::move(policy))) {}

    template <class T, class Next, class Done>
    void start(call_context& ctx, Next next, Done done) const {
        self_->start(ctx, detail::boxing_next<T, Next>{std::move(next)},
                     detail::unbox_outcome<T, Done>{std::move(done)});
    }

    /// Holds no policy (default-constructed): a route's policy that a routing policy can skip.
    bool empty() const noexcept { return self_ == nothing(); }

private:
    static const std::shared_ptr<const detail::policy_concept>& nothing() {
        static const std::shared_ptr<const detail::policy_concept> none =
            std::make_shared<const detail::policy_model<no_policy>>(no_policy{});
        return none;
    }

    std::shared_ptr<const detail::policy_concept> self_;
};

namespace detail {

/// Runs a route's own policy (a fallback target's, a split arm's) around `next`; one without a
/// policy costs nothing, where the erased layer would box every outcome.
template <class T, class Next, class Done>
void start_route_policy(const any_policy& policy, call_context& ctx, Next next, Done done) {
    if (policy.empty()) return next(ctx, std::move(done));
    start_layer<T>(policy, ctx, std::move(next), std::move(done));
}

}  // namespace detail

/// A list of policies decided at run time; they run outer to inner in the order added.
class dynamic_pipeline : public blocking_form<dynamic_pipeline> {
public:
    dynamic_pipeline() = default;
    dynamic_pipeline(std::initializer_list<any_policy> policies) : policies_(policies) {}

    /// Adds a policy inside the ones already added.
    dynamic_pipeline& add(any_policy policy) {
        policies_.push_back(std::move(policy));
        return *this;
    }
    std::size_t size() const noexcept { return policies_.size(); }

    template <class T, class Next, class Done>
    void start(call_context& ctx, Next next, Done done) const {
        start_at<T>(0, ctx, next, std::move(done));
    }

private:
    /// What runs inside the i-th policy: the policies after it, then `next`.
    template <class T, class Next>
    struct inner {
        const dynamic_pipeline* self;
        std::size_t i;
        Next next;
        template <class K>
        void operator()(call_context& ctx, K&& k) const {
            self->start_at<T>(i, ctx, next, std::forward<K>(k));
        }
    };

    template <class T, class Next, class Done>
    void start_at(std::size_t i, call_context& ctx, const Next& next, Done done) const {
        if (i == policies_.size()) return next(ctx, std::move(done));
        detail::start_layer<T>(policies_[i], ctx, inner<T, Next>{this, i + 1, next}, std::move(done));
    }

    std::vector<any_policy> policies_;
};

}  // namespace sturdy
