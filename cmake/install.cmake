# Install rules (included by the top-level CMakeLists.txt when NB_INSTALL):
#   include/nabla.h, include/nabla/*.h (with the generated version.h)
#   lib/libnabla.so.MAJOR.MINOR.PATCH (soname libnabla.so.MAJOR), lib/libnabla.a
#   lib/cmake/nabla/   nablaConfig.cmake, nablaConfigVersion.cmake, nablaTargets*.cmake
#   lib/pkgconfig/nabla.pc
# and, for the top-level project, CPack's Debian package (cpack -G DEB).
include(CMakePackageConfigHelpers)
set(NB_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/nabla)

install(TARGETS nabla_shared nabla_static EXPORT nablaTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})

# Every public header under include/ (a new one needs no edit here); dist.h
# only when its functions are built.
set(NB_HEADER_EXCLUDES)
if(NOT NB_MPI)
  set(NB_HEADER_EXCLUDES PATTERN dist.h EXCLUDE)
endif()
install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h" ${NB_HEADER_EXCLUDES})
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/include/nabla/version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/nabla)

# ---- CMake package: find_package(nabla) ----
install(EXPORT nablaTargets NAMESPACE nabla:: DESTINATION ${NB_INSTALL_CMAKEDIR})
if(NB_MPI)
  set(NB_MPI_BOOL TRUE)
  set(NB_CONFIG_MPI_NOTE " and MPI")
else()
  set(NB_MPI_BOOL FALSE)
  set(NB_CONFIG_MPI_NOTE "")
endif()
configure_package_config_file(cmake/nablaConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/nablaConfig.cmake
                              INSTALL_DESTINATION ${NB_INSTALL_CMAKEDIR})
# Before 1.0 a minor version may change the API (semantic versioning).
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(NB_VERSION_COMPAT SameMinorVersion)
else()
  set(NB_VERSION_COMPAT SameMajorVersion)
endif()
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/nablaConfigVersion.cmake
                                 COMPATIBILITY ${NB_VERSION_COMPAT})
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/nablaConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/nablaConfigVersion.cmake
        DESTINATION ${NB_INSTALL_CMAKEDIR})

# ---- pkg-config: nabla.pc ----
# What linking libnabla.a needs besides it (pkg-config --static): OpenMP,
# libm, zlib (the IDX reader's .gz files), HDF5 and MPI, named as pkg-config modules where this system has them
# (Debian's HDF5 lives under hdf5/serial: only its module knows where).
set(NB_PC_REQUIRES_PRIVATE)
set(NB_PC_LIBS_PRIVATE ${OpenMP_C_FLAGS} -lm)
set(NB_PC_CFLAGS)
pkg_check_modules(NB_PC_ZLIB QUIET zlib)
if(NB_PC_ZLIB_FOUND)
  list(APPEND NB_PC_REQUIRES_PRIVATE zlib)
else()
  list(APPEND NB_PC_LIBS_PRIVATE -lz)
endif()
pkg_check_modules(NB_PC_HDF5 QUIET hdf5)
if(NB_PC_HDF5_FOUND)
  list(APPEND NB_PC_REQUIRES_PRIVATE hdf5)
else()
  list(APPEND NB_PC_LIBS_PRIVATE ${HDF5_C_LIBRARIES})
endif()
if(NB_MPI)
  set(NB_PC_CFLAGS " -DNB_HAVE_MPI")
  pkg_search_module(NB_PC_MPI QUIET mpi-c ompi-c mpich)
  if(NB_PC_MPI_FOUND)
    list(APPEND NB_PC_REQUIRES_PRIVATE ${NB_PC_MPI_MODULE_NAME})
  else()
    list(APPEND NB_PC_LIBS_PRIVATE ${MPI_C_LIBRARIES})
  endif()
endif()
list(JOIN NB_PC_REQUIRES_PRIVATE ", " NB_PC_REQUIRES_PRIVATE)
list(JOIN NB_PC_LIBS_PRIVATE " " NB_PC_LIBS_PRIVATE)
# The prefix is the one installed to (cmake --install --prefix, DESTDIR and
# CPack included), so it is filled in at install time: here NB_PC_PREFIX
# configures to the literal @NB_PC_PREFIX@ for the install step to replace.
set(NB_PC_PREFIX "@NB_PC_PREFIX@")
configure_file(cmake/nabla.pc.in ${CMAKE_CURRENT_BINARY_DIR}/nabla.pc.in @ONLY)
install(CODE "
  set(NB_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  configure_file(\"${CMAKE_CURRENT_BINARY_DIR}/nabla.pc.in\" \"${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/nabla.pc\" @ONLY)
  file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig\" TYPE FILE
       FILES \"${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/nabla.pc\")")

# ---- Debian package: cpack -G DEB -> libnabla-dev_VERSION_ARCH.deb ----
if(PROJECT_IS_TOP_LEVEL)
  set(CPACK_PACKAGE_NAME libnabla-dev)
  set(CPACK_PACKAGE_VENDOR nabla)
  set(CPACK_PACKAGE_CONTACT "nabla developers")
  set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
  # CPack installs with CMAKE_INSTALL_PREFIX=/usr under a DESTDIR, so that
  # nabla.pc (written at install time) says prefix=/usr.
  set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
  set(CPACK_INSTALL_PREFIX /usr)
  set(CPACK_SET_DESTDIR ON)
  set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
  set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
  # Run-time libraries (libgomp, libhdf5, libmpi) from dpkg-shlibdeps; the
  # -dev packages because libnabla.a and the CMake package need them.
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON) # shlibs file and the ldconfig trigger
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libhdf5-dev, zlib1g-dev")
  if(NB_MPI)
    string(APPEND CPACK_DEBIAN_PACKAGE_DEPENDS ", libopenmpi-dev | mpi-default-dev")
  endif()
  include(CPack)
endif()
