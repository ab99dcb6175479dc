# bench_grpc (grpc_peer.cc): gRPC C++ on the service benchmark's echo.proto. Built only
# where gRPC C++ is installed (scripts/setup-bench-grpc.sh); never needed otherwise.
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(GRPCPP QUIET IMPORTED_TARGET grpc++ protobuf)
endif()
find_program(SHOAL_GRPC_CPP_PLUGIN grpc_cpp_plugin)
find_program(SHOAL_BENCH_PROTOC protoc)
if(GRPCPP_FOUND AND SHOAL_GRPC_CPP_PLUGIN AND SHOAL_BENCH_PROTOC)
  enable_language(CXX)
  set(_gen ${CMAKE_CURRENT_BINARY_DIR}/grpc-gen)
  set(_src ${_gen}/echo.pb.cc ${_gen}/echo.grpc.pb.cc)
  add_custom_command(
    OUTPUT ${_src}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${_gen}
    COMMAND ${SHOAL_BENCH_PROTOC} -I${CMAKE_CURRENT_SOURCE_DIR}/peers --cpp_out=${_gen}
            --grpc_out=${_gen} --plugin=protoc-gen-grpc=${SHOAL_GRPC_CPP_PLUGIN}
            ${CMAKE_CURRENT_SOURCE_DIR}/peers/echo.proto
    DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/peers/echo.proto
    COMMENT "protoc: gRPC C++ code of bench/peers/echo.proto")
  add_executable(bench_grpc peers/grpc_peer.cc ${_src})
  target_include_directories(bench_grpc PRIVATE ${_gen})
  target_link_libraries(bench_grpc PRIVATE PkgConfig::GRPCPP Threads::Threads)
  set_target_properties(bench_grpc PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${SHOAL_BENCH_BIN}
                                              CXX_STANDARD 17)
endif()
