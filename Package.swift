// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "SwiftLM",
    products: [
        .library(name: "Kernels", targets: ["Kernels"]),
        .library(name: "ReferenceKernels", targets: ["ReferenceKernels"]),
        .library(name: "TensorIO", targets: ["TensorIO"]),
        .library(name: "Tokenizer", targets: ["Tokenizer"]),
        .library(name: "ChatTemplate", targets: ["ChatTemplate"]),
        .library(name: "Model", targets: ["Model"]),
        .library(name: "Drawing", targets: ["Drawing"]),
        .library(name: "Verification", targets: ["Verification"]),
        .library(name: "DataParallel", targets: ["DataParallel"]),
        .executable(name: "lm", targets: ["lm"]),
        .executable(name: "bench", targets: ["bench"]),
        .executable(name: "lm-serve", targets: ["lm-serve"]),
    ],
    // `swift build --traits MPI` (or a dependent package enabling the trait) adds data-parallel
    // training over Open MPI; the default build needs no MPI.
    traits: [
        .trait(name: "MPI", description: "Data-parallel training over MPI (Open MPI: libopenmpi-dev, openmpi-bin)."),
        .default(enabledTraits: []),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `swift package generate-documentation` (the guide in Sources/Model/Model.docc); a
        // command plugin, not linked into anything.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
        // The HTTP server of `lm-serve` only (`lm` and the library targets do not build it).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
    ],
    targets: [
        // CBLAS from the system's OpenBLAS (Debian: libopenblas-dev, liblapacke-dev).
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]
        ),
        // MPI's C API from the system's Open MPI (Debian: libopenmpi-dev), with a shim for the
        // handles Open MPI defines as macros. Only compiled with the MPI trait.
        .systemLibrary(
            name: "CMPI",
            pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev"])]
        ),
        // Float32 kernels: every matmul-heavy op on cblas_sgemm, the rest as tight loops.
        .target(name: "Kernels", dependencies: ["COpenBLAS", "CVectorKernels"]),
        // The decode step's matrix–vector product, hand-vectorised (AVX2+FMA, chosen at run time).
        .target(name: "CVectorKernels"),
        // Plain-loop references, generic over the float type: the specification of each kernel.
        .target(name: "ReferenceKernels"),
        // safetensors and NPY readers and writers.
        .target(name: "TensorIO", dependencies: ["CMappedFileGuard"]),
        // A SIGBUS handler that turns a mapped file shrinking under its reader into an error.
        .target(name: "CMappedFileGuard"),
        // Byte-level BPE: GPT-2 pre-tokenization, training, encoding, decoding, file formats.
        .target(name: "Tokenizer", dependencies: ["TensorIO"]),
        // Chat templates: a small Jinja interpreter of what models' templates use.
        .target(name: "ChatTemplate"),
        // Self-contained SVG pictures: loss curves, attention heat maps. No model code.
        .target(name: "Drawing"),
        // Tokenizer-to-logits pipeline, built on Kernels; folders by part of the architecture.
        .target(name: "Model", dependencies: ["Kernels", "TensorIO", "Tokenizer", "ChatTemplate", "Drawing"]),
        // Data-parallel training across processes: the MPI implementation of Model's
        // `TrainingGroup`. Empty without the MPI trait.
        .target(
            name: "DataParallel",
            dependencies: ["Model", "Kernels", .target(name: "CMPI", condition: .when(traits: ["MPI"]))]
        ),
        .executableTarget(
            name: "lm",
            dependencies: [
                "Model", "TensorIO", "Kernels", "Tokenizer", "ChatTemplate", "Drawing",
                .target(name: "DataParallel", condition: .when(traits: ["MPI"])),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The OpenAI-compatible server with continuous batching, and its page (Resources/index.html).
        .executableTarget(
            name: "lm-serve",
            dependencies: [
                "Model", "Kernels", "Tokenizer", "ChatTemplate",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            resources: [.copy("Resources/index.html")]
        ),
        // What tests and the bench both check with: closeness, the reference model on a model's weights.
        .target(name: "Verification", dependencies: ["Model", "ReferenceKernels"]),
        .executableTarget(
            name: "bench",
            dependencies: [
                "Kernels", "ReferenceKernels", "Model", "TensorIO", "Tokenizer", "Verification",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/bench"
        ),
        // Shared helpers for the test targets: seeded data, tolerance checks, fixture lookup.
        .target(
            name: "TestSupport",
            dependencies: ["Kernels", "TensorIO", "Verification"],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "KernelsTests",
            dependencies: ["Kernels", "ReferenceKernels", "TensorIO", "TestSupport", "Verification"],
            exclude: ["ggml_reference_blocks.json"]  // read from the source tree (#filePath)
        ),
        .testTarget(name: "TensorIOTests", dependencies: ["TensorIO", "Kernels", "TestSupport"]),
        .testTarget(name: "ChatTemplateTests", dependencies: ["ChatTemplate", "TestSupport"],
                    exclude: ["random_conversations.json", "structured_conversations.json", "qwen3_chat_template.jinja",
                              "gemma3_chat_template.jinja"]),  // read from the source tree (#filePath)
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "Kernels", "TensorIO", "TestSupport"],
                    exclude: ["Fixtures"]),  // read from the source tree (#filePath)
        // The command-line tool run as a user runs it (the `lm` executable beside the tests).
        .testTarget(name: "CLITests", dependencies: ["lm", "Kernels", "TensorIO", "TestSupport"]),
        // `mpirun -np 2 lm train` against one process: only with the MPI trait (skips visibly without).
        // `lm-serve` run as a user runs it, answered over HTTP.
        .testTarget(name: "ServerTests", dependencies: ["lm-serve", "Model", "Kernels", "Tokenizer", "ChatTemplate", "TestSupport"]),
        .testTarget(name: "MPITests", dependencies: ["lm", "TensorIO", "TestSupport"]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "Drawing", "Kernels", "ReferenceKernels", "TensorIO", "Tokenizer", "TestSupport", "Verification"],
                    exclude: ["Fixtures"]),  // read from the source tree (#filePath)
    ],
    swiftLanguageModes: [.v6]
)

// libFuzzer targets for the file formats read from outside, only when LM_FUZZ is set: the
// executable has no main of its own (libFuzzer provides it). scripts/fuzz.sh builds it with
// `-sanitize=fuzzer` and runs each format for a bounded time.
if Context.environment["LM_FUZZ"] != nil {
    package.targets.append(.executableTarget(name: "lm-fuzz", dependencies: ["Model", "TensorIO", "Tokenizer", "ChatTemplate"], path: "Fuzz/lm-fuzz"))
}
