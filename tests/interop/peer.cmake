# sotto-interop-peer: libsignal-protocol-c driven over stdin/stdout (see
# tests/interop/peer.c). Included by tests/interop/CMakeLists.txt and by
# bench/CMakeLists.txt (whichever comes first defines the target).
#
# The peer links libsignal-protocol-c and OpenSSL libcrypto only: never
# libsotto, libsodium or the system protobuf-c (libsignal-protocol-c exports
# unprefixed internals that would clash). Its headers are included as
# <signal/...>, so /usr/include/signal is deliberately not on the path.
if(NOT TARGET sotto-interop-peer)
  find_library(SOTTO_SIGNAL_PROTOCOL_C_LIB NAMES signal-protocol-c REQUIRED)
  find_path(SOTTO_SIGNAL_PROTOCOL_C_INCLUDE NAMES signal/signal_protocol.h REQUIRED)
  add_executable(sotto-interop-peer
    ${CMAKE_SOURCE_DIR}/tests/interop/peer.c
    ${CMAKE_SOURCE_DIR}/tests/interop/peer_crypto.c
    ${CMAKE_SOURCE_DIR}/tests/interop/peer_store.c
    ${CMAKE_SOURCE_DIR}/bench/lib_peer_bench.c)
  target_include_directories(sotto-interop-peer SYSTEM PRIVATE ${SOTTO_SIGNAL_PROTOCOL_C_INCLUDE})
  target_link_libraries(sotto-interop-peer PRIVATE ${SOTTO_SIGNAL_PROTOCOL_C_LIB}
                        PkgConfig::LIBCRYPTO Threads::Threads)
  set_target_properties(sotto-interop-peer PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/interop)
endif()
