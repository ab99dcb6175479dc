# Install rules: the libraries, public headers under include/shoal/, the schema
# options, shoal.pc and a CMake package (find_package(shoal) -> shoal::shoal).
include(CMakePackageConfigHelpers)

install(TARGETS shoal shoal_static EXPORT shoalTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/runtime/include/
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(EXISTS ${PROJECT_SOURCE_DIR}/schemas/shoal/options.proto)
  install(FILES ${PROJECT_SOURCE_DIR}/schemas/shoal/options.proto
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/shoal)
endif()

set(SHOAL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/shoal)
install(EXPORT shoalTargets NAMESPACE shoal:: DESTINATION ${SHOAL_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/shoalConfig.cmake.in
  ${PROJECT_BINARY_DIR}/shoalConfig.cmake INSTALL_DESTINATION ${SHOAL_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/shoalConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/shoalConfig.cmake
              ${PROJECT_BINARY_DIR}/shoalConfigVersion.cmake
        DESTINATION ${SHOAL_CMAKE_DIR})
file(GLOB SHOAL_CMAKE_MODULES ${PROJECT_SOURCE_DIR}/cmake/Shoal*.cmake)
if(SHOAL_CMAKE_MODULES)
  install(FILES ${SHOAL_CMAKE_MODULES} DESTINATION ${SHOAL_CMAKE_DIR})
endif()

# shoal.pc finds its prefix relative to itself, so an installed tree can be moved. Its
# Libs.private names what the static library needs besides: liburing (the loop's
# io_uring engine) and nng (services over ipc:// and tcp://) when built with them.
set(SHOAL_PC_LIBS_PRIVATE "")
if(SHOAL_WITH_URING)
  foreach(_lib ${URING_LIBRARIES})
    string(APPEND SHOAL_PC_LIBS_PRIVATE " -l${_lib}")
  endforeach()
endif()
if(SHOAL_WITH_NNG)
  string(APPEND SHOAL_PC_LIBS_PRIVATE " -lnng")
endif()
file(RELATIVE_PATH SHOAL_PC_TO_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
configure_file(${PROJECT_SOURCE_DIR}/cmake/shoal.pc.in ${PROJECT_BINARY_DIR}/shoal.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/shoal.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
