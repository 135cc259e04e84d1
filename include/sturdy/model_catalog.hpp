#pragma once
/// @file
/// The model catalog: each endpoint's GET /models, cached for a while, and model names checked
/// against it, with the closest names the endpoint serves suggested for one it does not.
///
///     sturdy::client client;
///     sturdy::model_catalog catalog(client);                // lists cached for 10 minutes
///     auto checked = catalog.validate("gpt-4o-mnii");
///     if (!checked) std::cerr << checked.error().what() << "\n";
///     // not_found: model "gpt-4o-mnii" is not served by api.openai.com; did you mean: gpt-4o-mini, gpt-4o, ...?
///
/// Through a routing policy (a fallback chain, a traffic split) each route is asked on its own:
/// `validate("llama-3.1-70b", "backup")` reads the /models of the route named "backup", by a call
/// pinned to it (request_options::pinned_route), cached under that name. `validate_routes(targets)`
/// checks every route's model at once, say at start-up.

#include <sturdy/clock.hpp>
#include <sturdy/error.hpp>
#include <sturdy/models.hpp>
#include <sturdy/options.hpp>
#include <sturdy/policy.hpp>
#include <sturdy/result.hpp>
#include <sturdy/detail/edit_distance.hpp>
#include <sturdy/detail/model_names.hpp>
#include <sturdy/detail/redact.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace sturdy {

namespace detail {

/// Names longer than this are not compared (a name is a few dozen characters; this bounds the work
/// a hostile one costs).
inline constexpr std::size_t longest_compared_name = 256;

inline std::string folded(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = fold_ascii(c);
    return out;
}

/// `id` after its last '/' ("openai/gpt-4o" -> "gpt-4o"); `id` when it has none.
inline std::string_view after_last_slash(std::string_view id) {
    const auto slash = id.rfind('/');
    return slash == std::string_view::npos ? id : id.substr(slash + 1);
}

/// How close `candidate` is to `name`: a rank (lower is closer), then the edit distance between
/// the two whole names. Nullopt when it is not close enough to suggest.
///
/// Rank 0: the same model by the rule price and window tables use (detail::find_model) or by
/// case: "GPT-4o", "openai/gpt-4o" and "gpt-4o-2024-08-06" for "gpt-4o", either way round. Else the
/// edit distance (adjacent swaps count 1, case is ignored) between the names, or between their
/// parts after a gateway's '/', when at most half the longer one's characters change; and rank 2
/// when one of them contains the other (3 characters or more): "deepseek" for "deepseek-chat".
inline std::optional<std::pair<std::size_t, std::size_t>> name_closeness(std::string_view name,
                                                                         std::string_view candidate) {
    if (name.size() > longest_compared_name || candidate.size() > longest_compared_name) return std::nullopt;
    const std::string n = folded(name), c = folded(candidate);
    const std::string_view n_tail = after_last_slash(n), c_tail = after_last_slash(c);
    if (n_tail.empty() || c_tail.empty()) return std::nullopt;
    const std::size_t whole = edit_distance(n, c);
    if (n_tail == c_tail || without_snapshot(n_tail) == c_tail || without_snapshot(c_tail) == n_tail)
        return std::make_pair(std::size_t{0}, whole);
    std::optional<std::size_t> rank;
    auto consider = [&rank](std::size_t r) { rank = rank ? std::min(*rank, r) : r; };
    for (const auto& [x, y] :
         {std::make_pair(std::string_view(n), std::string_view(c)), std::make_pair(n_tail, c_tail)}) {
        const std::size_t longer = std::max(x.size(), y.size());
        const std::size_t d = edit_distance(x, y, longer / 2);
        if (d * 2 <= longer) consider(d);
        const std::string_view shorter = x.size() < y.size() ? x : y;
        if (shorter.size() >= 3 && (x.size() < y.size() ? y : x).find(shorter) != std::string_view::npos) consider(2);
    }
    if (!rank) return std::nullopt;
    return std::make_pair(*rank, whole);
}

/// The host a base URL names, without any user information ("https://api.openai.com/v1" ->
/// "api.openai.com"): what a catalog's messages call the client's endpoint.
inline std::string host_of(std::string_view url) {
    if (const auto scheme = url.find("://"); scheme != std::string_view::npos) url.remove_prefix(scheme + 3);
    url = url.substr(0, url.find_first_of("/?#"));
    if (const auto at = url.rfind('@'); at != std::string_view::npos) url.remove_prefix(at + 1);
    return std::string(url);
}

template <class Client, class = void>
struct lists_models : std::false_type {};
template <class Client>
struct lists_models<Client, std::enable_if_t<std::is_convertible_v<decltype(std::declval<const Client&>().try_models(
                                                                       std::declval<const request_options&>())),
                                                                   result<model_list>>>> : std::true_type {};

template <class Client, class = void>
struct has_base_url : std::false_type {};
template <class Client>
struct has_base_url<Client, std::void_t<decltype(std::string_view(std::declval<const Client&>().options().base_url))>>
    : std::true_type {};

template <class T, class = void>
struct holds_route : std::false_type {};
template <class T>
struct holds_route<T, std::void_t<decltype(std::declval<const T&>().route.name)>> : std::true_type {};

}  // namespace detail

/// Up to `n` of `candidates` closest to `name`, the closest first, for a "did you mean": the same
/// model under another case, gateway prefix or snapshot tag first, then by edit distance
/// (Damerau-Levenshtein, case-insensitive, also between the parts after a gateway's '/') where at
/// most half the characters differ, with a name that contains the other (or is contained in it)
/// counted as 2 edits away. Ties go to the smaller whole-name distance, then to the name's byte
/// order, so the answer is the same on every run. Names that are not close at all are left out,
/// so fewer than `n` (or none) may come back; duplicates come back once.
///
///     closest_model_names("gpt-4o-mnii", {"gpt-4o", "gpt-4o-mini", "o3"})   // {"gpt-4o-mini", "gpt-4o"}
inline std::vector<std::string> closest_model_names(std::string_view name, const std::vector<std::string>& candidates,
                                                    std::size_t n = 3) {
    std::vector<std::tuple<std::size_t, std::size_t, std::string_view>> ranked;
    for (const auto& candidate : candidates)
        if (auto close = detail::name_closeness(name, candidate))
            ranked.emplace_back(close->first, close->second, candidate);
    std::sort(ranked.begin(), ranked.end());
    std::vector<std::string> out;
    for (const auto& r : ranked) {
        if (out.size() >= n) break;
        const std::string_view id = std::get<2>(r);
        if (std::find(out.begin(), out.end(), id) == out.end()) out.emplace_back(id);
    }
    return out;
}

/// Settings of a model catalog.
struct model_catalog_options {
    /// How long a fetched list answers before the next use fetches it again. Zero: every use fetches.
    clock::duration ttl = std::chrono::minutes(10);
    /// When a refresh fails, the list fetched before keeps answering for this long past its TTL
    /// (stale-if-error); later, or with zero, the failed fetch's error is the answer.
    clock::duration max_stale = std::chrono::hours(1);
    /// A name the cached list does not have makes the catalog fetch the list again first, when the
    /// list is at least this old (the model may have been deployed since): the answer comes from the
    /// new list. clock::duration::max(): never; zero: on every miss.
    clock::duration recheck_miss_after = std::chrono::seconds(30);
    /// How many names a "not served" error suggests.
    std::size_t suggestions = 3;
    /// What messages call the endpoint. Empty: the host of the client's base URL, or "the server"
    /// for a catalog made from a fetch function.
    std::string name;
    /// Settings of each GET /models call: timeouts, headers, cancellation. The catalog sets
    /// `pinned_route` to the route asked about.
    request_options request;
};

/// Each endpoint's list of models (GET /models), cached for `model_catalog_options::ttl` on the
/// injected clock, and model names checked against it.
///
/// - Keys: lists are cached per route name. "" (the default) is the client's call as it is; a name
///   pins the call to that route of the client's routing policy (`request_options::pinned_route`),
///   so it reads that route's endpoint. A policy without routes ignores the pin: every name then
///   reads the client's own endpoint. A name the routing policy does not have is the policy's
///   invalid_argument error, returned as any failed fetch is.
/// - One fetch at a time per key: a call that finds the list missing or expired while another
///   thread fetches it waits for that fetch and takes its outcome (list or error), so a burst of
///   calls after the TTL makes one request. No caller ever sees a list older than the TTL except
///   by the stale-if-error rule below. (The fetch runs under the client's own timeouts and policy;
///   bound it with `model_catalog_options::request`.)
/// - A failed fetch caches nothing: the next use fetches again. While a list fetched earlier is
///   within `ttl + max_stale` it answers instead of the error; after that the error is returned,
///   unchanged (a connection error, a 401, the routing policy's invalid_argument...).
/// - All members may be called from many threads at once. Copies share the cache.
///
/// The client given must outlive the catalog and every copy of it.
class model_catalog {
public:
    /// What fetches one list: a client's `try_models(options)`, or anything that answers alike.
    using fetch_function = std::function<result<model_list>(const request_options&)>;

    /// A catalog of the lists `fetch` returns. Throws std::invalid_argument when `fetch` is empty.
    explicit model_catalog(fetch_function fetch, model_catalog_options options = {}, sturdy::timing timing = {})
        : state_(std::make_shared<state>()) {
        if (!fetch) throw std::invalid_argument("model_catalog: no fetch function");
        if (options.name.empty()) options.name = "the server";
        state_->fetch = std::move(fetch);
        state_->options = std::move(options);
        state_->timing = std::move(timing);
    }

    /// A catalog of the lists `lister` fetches: a client (any `basic_client`, or a class with the
    /// same `try_models`), named in messages after the host of its base URL. It must outlive the
    /// catalog.
    template <class Client, std::enable_if_t<detail::lists_models<Client>::value, int> = 0>
    explicit model_catalog(const Client& lister, model_catalog_options options = {}, sturdy::timing timing = {})
        : model_catalog([&lister](const request_options& call) { return lister.try_models(call); },
                        named_after(lister, std::move(options)), std::move(timing)) {}
    /// A temporary client would be gone before the first fetch.
    template <class Client, std::enable_if_t<detail::lists_models<Client>::value, int> = 0>
    model_catalog(const Client&& lister, model_catalog_options options = {}, sturdy::timing timing = {}) = delete;

    /// The list `route` serves ("": the client's call as it is), from the cache while it is fresh.
    /// A copy; the call report (`model_list::call`) is that of the fetch it came from.
    result<model_list> models(std::string_view route = {}) const {
        auto snap = snapshot(route, false);
        if (!snap) return snap.error();
        return (*snap)->list;
    }

    /// The ids `route` serves, in the order the server listed them.
    result<std::vector<std::string>> ids(std::string_view route = {}) const {
        auto snap = snapshot(route, false);
        if (!snap) return snap.error();
        return ids_of(**snap);
    }

    /// `model`'s entry when `route` serves it (ids match exactly, as servers match them). Else a
    /// not_found error, code "model_not_found", param "model", whose message names the model and
    /// where it was looked for, and suggests the closest ids served (closest_model_names), or lists
    /// them all when there are five or fewer and none is close:
    ///
    ///     not_found: model "gpt-4o-mnii" is not served by api.openai.com; did you mean: gpt-4o-mini, gpt-4o?
    ///     not_found: model "llama3" is not served by route "local"; it serves: qwen2.5-7b-instruct
    ///
    /// A list older than `recheck_miss_after` is fetched again before a miss is reported. When the
    /// list cannot be fetched, the fetch's error (see the class). An empty `model` is invalid_argument.
    result<model_info> validate(std::string_view model, std::string_view route = {}) const {
        if (model.empty()) return error(error_kind::invalid_argument, "model_catalog: no model name to validate");
        auto snap = snapshot(route, false);
        if (!snap) return snap.error();
        if (auto found = find(**snap, model)) return *found;
        if (age(**snap) >= state_->options.recheck_miss_after) {
            snap = snapshot(route, true);
            if (!snap) return snap.error();
            if (auto found = find(**snap, model)) return *found;
        }
        return not_served(**snap, model, route);
    }

    /// Checks each route's model at that route (validate(route.model, route.name)), for a list of
    /// `sturdy::route`s or of anything holding one as `.route` (fallback_target, split_arm): the
    /// list given to the routing policy. A route without a model of its own (it sends the
    /// request's) is skipped. Returns the errors, in the routes' order; empty when all are served.
    template <class Routes>
    std::vector<error> validate_routes(const Routes& routes) const {
        std::vector<error> errors;
        for (const auto& item : routes) {
            const sturdy::route& r = route_of(item);
            if (r.model.empty()) continue;
            auto checked = validate(r.model, r.name);
            if (!checked) errors.push_back(checked.error());
        }
        return errors;
    }

    /// Up to `n` ids that `route` serves closest to `model` (closest_model_names), the closest first.
    result<std::vector<std::string>> suggest(std::string_view model, std::size_t n = 3,
                                             std::string_view route = {}) const {
        auto snap = snapshot(route, false);
        if (!snap) return snap.error();
        return closest_model_names(model, ids_of(**snap), n);
    }

    /// Forgets `route`'s list: the next use fetches it (a fetch under way still completes and is kept).
    void invalidate(std::string_view route = {}) const {
        std::lock_guard<std::mutex> lock(state_->mutex);
        if (auto it = state_->entries.find(route); it != state_->entries.end()) it->second.list.reset();
    }

    /// Forgets every list.
    void clear() const {
        std::lock_guard<std::mutex> lock(state_->mutex);
        for (auto& item : state_->entries) item.second.list.reset();
    }

    /// The settings it was made with (`name` filled in).
    const model_catalog_options& options() const noexcept { return state_->options; }

private:
    struct snapshot_data {
        model_list list;
        std::map<std::string, std::size_t, std::less<>> index;  // id -> place in list.data
        clock::time_point fetched_at;
    };
    using snapshot_ptr = std::shared_ptr<const snapshot_data>;
    /// One fetch under way; the calls waiting for it share its outcome.
    struct flight {
        bool done = false;
        std::optional<result<snapshot_ptr>> outcome;  // none when the fetch threw
    };
    struct entry {
        snapshot_ptr list;
        std::shared_ptr<flight> fetching;
    };
    struct state {
        fetch_function fetch;
        model_catalog_options options;
        sturdy::timing timing;
        std::mutex mutex;
        std::condition_variable fetched;
        std::map<std::string, entry, std::less<>> entries;  // never erased: a fetch holds its entry
    };

    template <class Client>
    static model_catalog_options named_after(const Client& lister, model_catalog_options options) {
        if constexpr (detail::has_base_url<Client>::value)
            if (options.name.empty()) options.name = detail::host_of(lister.options().base_url);
        return options;
    }

    template <class Item>
    static const sturdy::route& route_of(const Item& item) {
        if constexpr (std::is_convertible_v<const Item&, const sturdy::route&>)
            return item;
        else
            return item.route;
    }

    clock::duration age(const snapshot_data& s) const { return state_->timing.clock->now() - s.fetched_at; }

    /// Whether a list this old may answer after a failed refresh.
    bool usable_after_failure(const snapshot_data& s) const {
        const auto a = age(s);
        return a < state_->options.ttl || a - state_->options.ttl < state_->options.max_stale;
    }

    static std::vector<std::string> ids_of(const snapshot_data& s) {
        std::vector<std::string> ids;
        ids.reserve(s.list.data.size());
        for (const auto& m : s.list.data) ids.push_back(m.id);
        return ids;
    }

    static std::optional<model_info> find(const snapshot_data& s, std::string_view model) {
        const auto it = s.index.find(model);
        if (it == s.index.end()) return std::nullopt;
        return s.list.data[it->second];
    }

    error not_served(const snapshot_data& s, std::string_view model, std::string_view route) const {
        const auto& opts = state_->options;
        std::string message = "model \"" + detail::truncate_utf8(model, 200) + "\" is not served by ";
        message += route.empty() ? opts.name : "route \"" + std::string(route) + "\"";
        const auto ids = ids_of(s);
        const auto close = closest_model_names(model, ids, opts.suggestions);
        auto join = [](const std::vector<std::string>& names) {
            std::string out;
            for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
            return out;
        };
        if (!close.empty()) {
            message += "; did you mean: " + join(close) + "?";
        } else if (ids.empty()) {
            message += ", which lists no models";
        } else if (ids.size() <= 5) {
            message += "; it serves: " + join(ids);
        } else {
            message += " (none of its " + std::to_string(ids.size()) + " models has a similar name)";
        }
        error_details d;
        d.message = std::move(message);
        d.code = std::string(error_codes::model_not_found);
        d.param = "model";
        return error(error_kind::not_found, std::move(d));
    }

    static snapshot_ptr make_snapshot(model_list list, clock::time_point at) {
        auto s = std::make_shared<snapshot_data>();
        s->list = std::move(list);
        for (std::size_t i = 0; i < s->list.data.size(); ++i) s->index.emplace(s->list.data[i].id, i);
        s->fetched_at = at;
        return s;
    }

    /// `route`'s list: the cached one while fresh (unless `refresh`), else the outcome of a fetch,
    /// this thread's or the one under way.
    result<snapshot_ptr> snapshot(std::string_view route, bool refresh) const {
        state& s = *state_;
        std::unique_lock<std::mutex> lock(s.mutex);
        auto it = s.entries.find(route);
        if (it == s.entries.end()) it = s.entries.emplace(std::string(route), entry{}).first;
        entry& e = it->second;
        for (;;) {
            if (!refresh && e.list && age(*e.list) < s.options.ttl) return e.list;
            if (!e.fetching) break;
            const auto under_way = e.fetching;
            s.fetched.wait(lock, [&] { return under_way->done; });
            if (under_way->outcome) return *under_way->outcome;
            refresh = false;  // that fetch threw: look again, and fetch here if still needed
        }
        const auto mine = std::make_shared<flight>();
        e.fetching = mine;
        lock.unlock();

        // The fetch runs unlocked; a fetch that throws lets the waiting calls try on their own.
        auto finish = [&](std::optional<result<snapshot_ptr>> outcome) {
            mine->outcome = std::move(outcome);
            mine->done = true;
            e.fetching.reset();
            s.fetched.notify_all();
        };
        request_options call = s.options.request;
        call.pinned_route = std::string(route);
        std::optional<result<snapshot_ptr>> outcome;
        try {
            auto fetched = s.fetch(call);
            if (fetched) {
                outcome.emplace(make_snapshot(std::move(*fetched), s.timing.clock->now()));
            } else {
                outcome.emplace(fetched.error());
            }
        } catch (...) {
            lock.lock();
            finish(std::nullopt);
            throw;
        }
        lock.lock();
        if (*outcome) {
            e.list = **outcome;
        } else if (e.list && usable_after_failure(*e.list)) {
            outcome.emplace(e.list);  // stale-if-error
        }
        finish(outcome);
        return std::move(*outcome);
    }

    std::shared_ptr<state> state_;
};

}  // namespace sturdy
