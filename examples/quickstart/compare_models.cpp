// Quickstart: before switching models, ask the current one and the candidate the same questions
// and compare their answers by meaning (the cosine similarity of their embeddings), keeping each
// prompt within the smaller model's context window. The migration guides use a mean of 0.80 as
// the bar for "answers alike".
#include <sturdy/sturdy.hpp>

#include "example_backend.hpp"

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

int main() {
    example_backend backend;
    const sturdy::client client(backend.options());
    // With the demo server both are served locally; against a real API set them to the two models
    // you compare (OPENAI_MODEL is the current one).
    const std::string current = backend.chat_model();
    const std::string candidate = backend.demo() ? "demo-large" : "gpt-4.1-mini";

    // A long-running conversation would overflow a small model: keep the system message and the
    // latest turns that fit, with room for the reply.
    auto windows = sturdy::context_window_table::with_defaults();
    windows.set("demo-mini", 4096).set("demo-large", 4096);
    const std::int64_t window = std::min(windows.find(current).value_or(8192), windows.find(candidate).value_or(8192));

    const std::vector<std::string> questions{"What is a circuit breaker?", "Why retry with jitter?",
                                             "When should a client give up?"};
    double total = 0;
    try {
        for (const auto& question : questions) {
            sturdy::chat_request request{
                current,
                {sturdy::chat_message::system("Answer in one sentence."), sturdy::chat_message::user(question)}};
            const auto fitted = sturdy::fit_to_window(request, window, 512);
            const auto a = client.chat(fitted.request);
            request.model = candidate;
            const auto b = client.chat(sturdy::fit_to_window(request, window, 512).request);

            const auto e = client.embed({backend.embedding_model(), {a.content(), b.content()}});
            const double similarity = sturdy::cosine_similarity(e.data.at(0).values, e.data.at(1).values);
            total += similarity;
            std::cout << std::fixed << std::setprecision(3) << similarity << "  " << question << "  (prompt ~"
                      << fitted.tokens << " tokens)\n";
        }
    } catch (const sturdy::error& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
    const double mean = total / static_cast<double>(questions.size());
    std::cout << "mean similarity " << mean << (mean >= 0.80 ? ": alike" : ": they differ, look closer") << "\n";
}
