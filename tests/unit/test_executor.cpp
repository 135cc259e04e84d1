// The executor seam: policies decide, the executor waits, runs branches, records and guards the
// commit. These tests use policies of their own, in both forms, as a user would write them.
#include <sturdy/dynamic_pipeline.hpp>
#include <sturdy/executor.hpp>
#include <sturdy/pipeline.hpp>
#include <sturdy/retry.hpp>
#include <sturdy/testing/fake_clock.hpp>

#include "support/catch.hpp"
#include "support/tracer.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono;
using sturdy::error;
using sturdy::error_kind;

namespace {

struct call {
    sturdy::call_state state;
    sturdy::call_context ctx{sturdy::operation::chat_stream, "m", state};
};

error server_error() {
    sturdy::error_details d;
    d.status = 500;
    d.message = "scripted";
    return error(error_kind::internal_server, std::move(d));
}

// A user's retry in continuation form: on failure, asks for one more attempt, whatever happened.
struct retry_once {
    template <class T, class Next, class Done>
    struct run {
        Next next;
        Done done;
        sturdy::call_context* ctx;
        bool retried = false;
    };
    template <class T, class Next, class Done>
    struct settle {
        std::shared_ptr<run<T, Next, Done>> self;
        void operator()(sturdy::result<T> r) const {
            if (r || self->retried) return self->done(std::move(r));
            self->retried = true;
            self->next(*self->ctx, *this);
        }
    };
    template <class T, class Next, class Done>
    void start(sturdy::call_context& ctx, Next next, Done done) const {
        auto state = std::make_shared<run<T, Next, Done>>(run<T, Next, Done>{std::move(next), std::move(done), &ctx});
        state->next(ctx, settle<T, Next, Done>{state});
    }
};

// A user's gate in continuation form: refuses every call without an attempt.
struct closed_gate {
    template <class T, class Next, class Done>
    void start(sturdy::call_context&, Next, Done done) const {
        done(sturdy::result<T>(error(error_kind::rate_limited, "the gate is closed")));
    }
};

using sturdy_test::tracer;

// A user's policy that runs its one attempt as a branch: the call's outcome arrives on the
// branch's thread.
struct on_a_branch {
    template <class T, class Next, class Done>
    void start(sturdy::call_context& ctx, Next next, Done done) const {
        auto* c = &ctx;
        REQUIRE(ctx.exec->spawn([c, next, done]() mutable { next(*c, std::move(done)); }));
    }
};

// An executor that never sleeps: it records every wait asked for and runs branches inline.
struct recording_executor final : sturdy::executor {
    std::vector<sturdy::clock::duration> waits;
    int branches = 0;
    void after(const sturdy::clock&, sturdy::clock::duration d, const sturdy::cancellation_token& cancel,
               std::function<void(bool)> then) override {
        waits.push_back(d);
        then(!cancel.cancelled());
    }
    bool spawn(std::function<void()> branch) override {
        ++branches;
        branch();
        return true;
    }
};

}  // namespace

TEST_CASE("executor: a policy in continuation form runs over a blocking attempt", "[executor]") {
    static_assert(sturdy::detail::has_start<retry_once>::value, "continuation form detected");
    static_assert(!sturdy::detail::has_start<tracer>::value, "blocking form detected");
    call c;
    int attempts = 0;
    auto out = sturdy::execute(retry_once{}, c.ctx, [&](sturdy::call_context&) -> sturdy::result<int> {
        if (++attempts == 1) return server_error();
        return 7;
    });
    REQUIRE(out.has_value());
    CHECK(*out == 7);
    CHECK(attempts == 2);
    CHECK(c.ctx.exec == nullptr);  // the call's own executor is gone with the call
}

TEST_CASE("executor: both forms compose, outer to inner, in static and run-time pipelines", "[executor]") {
    std::vector<std::string> log;
    int attempts = 0;
    auto attempt = [&](sturdy::call_context&) -> sturdy::result<int> {
        log.push_back("attempt");
        return ++attempts % 2 == 1 ? sturdy::result<int>(server_error()) : sturdy::result<int>(1);
    };
    call c1;
    auto out = sturdy::compose(tracer{"a", &log}, retry_once{}, tracer{"b", &log}).execute(c1.ctx, attempt);
    CHECK(out.has_value());
    CHECK(log == std::vector<std::string>{"a+", "b+", "attempt", "b-", "b+", "attempt", "b-", "a-"});

    log.clear();
    call c2;
    sturdy::dynamic_pipeline dyn{tracer{"a", &log}, retry_once{}, tracer{"b", &log}};
    CHECK(dyn.execute(c2.ctx, attempt).has_value());
    CHECK(log == std::vector<std::string>{"a+", "b+", "attempt", "b-", "b+", "attempt", "b-", "a-"});
}

TEST_CASE("executor: a policy's own refusal is recorded once, however many layers it leaves", "[executor]") {
    call c;
    int attempts = 0;
    std::vector<std::string> log;
    auto p = sturdy::compose(tracer{"outer", &log}, retry_once{}, closed_gate{});
    auto out = p.execute(c.ctx, [&](sturdy::call_context&) -> sturdy::result<int> {
        ++attempts;
        return 1;
    });
    REQUIRE_FALSE(out.has_value());
    CHECK(attempts == 0);
    const auto errors = c.state.errors();
    REQUIRE(errors.size() == 2);  // the gate refused twice: once per try of the retry
    CHECK(errors[0].kind() == error_kind::rate_limited);
    CHECK(errors[1].kind() == error_kind::rate_limited);
    CHECK(&errors[1].details() == &out.error().details());  // the call's error is the last one
}

TEST_CASE("executor: no policy, of either form, can replay a stream that delivered content", "[executor]") {
    auto committing_attempt = [](int& attempts) {
        return [&attempts](sturdy::call_context& ctx) -> sturdy::result<int> {
            ++attempts;
            REQUIRE(ctx.state->try_commit(attempts));           // content reached the caller...
            return error(error_kind::stream_truncated, "cut");  // ...then the stream was cut
        };
    };
    SECTION("a continuation-form retry of the user's own") {
        call c;
        int attempts = 0;
        auto out = sturdy::execute(retry_once{}, c.ctx, committing_attempt(attempts));
        CHECK(attempts == 1);
        REQUIRE_FALSE(out.has_value());
        CHECK(out.error().code() == sturdy::error_codes::stream_committed);
        const auto errors = c.state.errors();
        REQUIRE(errors.size() == 1);  // the cut itself is the attempt's to record, not the policy's
        CHECK(errors[0].code() == sturdy::error_codes::stream_committed);
    }
    SECTION("the same retry inside a pipeline") {
        call c;
        int attempts = 0;
        auto out = sturdy::compose(retry_once{}, sturdy::no_policy{}).execute(c.ctx, committing_attempt(attempts));
        CHECK(attempts == 1);
        REQUIRE_FALSE(out.has_value());
        CHECK(out.error().code() == sturdy::error_codes::stream_committed);
    }
}

TEST_CASE("executor: policies wait only through the call's executor", "[executor]") {
    sturdy::testing::fake_clock fake(3);
    sturdy::retry_policy retry(sturdy::retry_options{}, fake.timing());
    recording_executor exec;
    call c;
    c.ctx.exec = &exec;
    int attempts = 0;
    auto out = retry.execute(c.ctx, [&](sturdy::call_context&) -> sturdy::result<int> {
        if (++attempts < 3) return server_error();
        return 1;
    });
    CHECK(out.has_value());
    CHECK(attempts == 3);
    REQUIRE(exec.waits.size() == 2);  // the official schedule, asked of the executor...
    CHECK(exec.waits[0] > milliseconds(375));
    CHECK(exec.waits[0] <= milliseconds(500));
    CHECK(exec.waits[1] > milliseconds(750));
    CHECK(exec.waits[1] <= milliseconds(1000));
    CHECK(fake.sleeps().empty());  // ...and never slept by the policy itself
    CHECK(c.ctx.exec == &exec);
}

TEST_CASE("blocking_executor: waits on the clock it is given, until cancelled", "[executor]") {
    sturdy::testing::fake_clock fake;
    sturdy::blocking_executor exec;
    bool elapsed = false;
    exec.after(fake, seconds(2), {}, [&](bool e) { elapsed = e; });
    CHECK(elapsed);
    REQUIRE(fake.sleeps().size() == 1);
    CHECK(fake.sleeps()[0] == seconds(2));

    sturdy::cancellation_source cancel;
    cancel.cancel();
    exec.after(fake, seconds(2), cancel.token(), [&](bool e) { elapsed = e; });
    CHECK_FALSE(elapsed);
}

TEST_CASE("blocking_executor: every branch, and every branch a branch starts, ends before the call returns",
          "[executor]") {
    std::atomic<int> finished{0};
    {
        sturdy::blocking_executor exec;
        for (int i = 0; i < 4; ++i) {
            REQUIRE(exec.spawn([&exec, &finished] {
                std::this_thread::sleep_for(milliseconds(20));
                exec.spawn([&finished] {
                    std::this_thread::sleep_for(milliseconds(20));
                    ++finished;
                });
                ++finished;
            }));
        }
    }  // the destructor joins
    CHECK(finished == 8);
}

TEST_CASE("executor: a branch's outcome completes a call that waits for it on another thread", "[executor]") {
    call c;
    std::thread::id ran_on;
    auto out = sturdy::execute(on_a_branch{}, c.ctx, [&](sturdy::call_context&) -> sturdy::result<int> {
        ran_on = std::this_thread::get_id();
        return 5;
    });
    REQUIRE(out.has_value());
    CHECK(*out == 5);
    CHECK(ran_on != std::this_thread::get_id());
}

TEST_CASE("executor: an attempt that throws leaves the context as it found it", "[executor]") {
    call c;
    CHECK_THROWS_AS(
        sturdy::execute(retry_once{}, c.ctx,
                        [](sturdy::call_context&) -> sturdy::result<int> { throw std::runtime_error("boom"); }),
        std::runtime_error);
    CHECK(c.ctx.exec == nullptr);
}
